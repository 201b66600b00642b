# frozen_string_literal: true

module SteppeRunner
  # The host starts this runner with `ruby --disable-gems`: loading RubyGems is most of Ruby's start-up
  # (about 40 ms of 50 here), and the runner itself needs only the standard library. A project that
  # uses gems gets them all the same: with a Gemfile in the project root, RubyGems loads at once; without
  # one, on the first `require` that the standard library cannot satisfy (which is then tried again), the
  # first call of `gem` or the first use of the `Gem` constant.
  module LazyGems
    def self.install(root)
      return if defined?(::Gem) # started with gems after all (a user's own command line)

      if File.exist?(File.join(root, 'Gemfile'))
        load_rubygems
      else
        ::Object.prepend(Require) # on Object, not Kernel: RubyGems aliases Kernel's own `require`
        ::Object.singleton_class.prepend(Constant)
      end
    end

    def self.load_rubygems
      return false if defined?(::Gem)

      ::Kernel.require('rubygems')
      true
    end

    # `require` that loads RubyGems and tries again when a name is not in the standard library
    module Require
      private

      def require(name)
        super
      rescue LoadError
        raise unless LazyGems.load_rubygems

        super
      end

      def gem(*args, **options)
        LazyGems.load_rubygems
        super
      end
    end

    # `Gem` (e.g. Gem::Version) loads RubyGems
    module Constant
      def const_missing(name)
        name == :Gem && LazyGems.load_rubygems ? ::Gem : super
      end
    end
  end
end
