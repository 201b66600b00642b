# frozen_string_literal: true

require_relative 'codec'

module SteppeRunner
  # Secrets never leave the runner in a log. The same rules as the host's (host/redact.py), with the
  # keys the host passes in STEPPE_REDACT_KEYS (the defaults when it is unset): a key is secret when
  # its name, lower-cased and without `-`/`_`, contains a secret word (`authorization` and `cookie`
  # always; `password`, `token`, ... by default); text loses `Bearer <token>` / `Basic <credentials>`
  # and `<secret key>=<value>` / `"<secret key>": "<value>"` (and Ruby's `"key" => "value"`).
  module Redact
    MASK = '[REDACTED]'
    ALWAYS_SECRET = %w[authorization proxy-authorization cookie set-cookie].freeze
    DEFAULT_REDACT_KEYS = 'password,passwd,secret,token,api_key,apikey,access_key,private_key'
    MAX_DEPTH = 100

    SCHEME = /\b(Bearer|Basic|Digest)(\s+)([A-Za-z0-9\-._~+\/]+=*)/i
    PAIR = /(["':]?)([A-Za-z0-9_\-.]+)(["']?)(\s*(?:=>|[:=])\s*)(?!\[REDACTED\])("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:(?:Bearer|Basic|Digest)\s+)?[^\s,;&}\]"']+)/i

    def self.norm(name)
      name.to_s.downcase.delete('-_')
    end

    WORDS = (ALWAYS_SECRET + ENV.fetch('STEPPE_REDACT_KEYS', DEFAULT_REDACT_KEYS).split(','))
            .map { |k| norm(k.strip) }.reject(&:empty?).uniq.freeze

    def self.secret_key?(name)
      n = norm(name)
      WORDS.any? { |w| n.include?(w) }
    end

    def self.text(s)
      return s unless s.is_a?(String)

      s = Text.utf8(s) # the patterns below raise on bytes that are not UTF-8
      lowered = s.downcase
      n = lowered.delete('-_')
      if WORDS.any? { |w| n.include?(w) }
        # first: it takes `authorization: Bearer x` whole
        s = s.gsub(PAIR) do
          m = Regexp.last_match
          next m[0] unless secret_key?(m[2])

          quote = m[5].start_with?('"', "'") ? m[5][0] : ''
          "#{m[1]}#{m[2]}#{m[3]}#{m[4]}#{quote}#{MASK}#{quote}"
        end
      end
      if lowered.include?('bearer') || lowered.include?('basic') || lowered.include?('digest')
        s = s.gsub(SCHEME) do
          m = Regexp.last_match
          m[1].casecmp?('basic') && !basic?(m[3]) ? m[0] : "#{m[1]}#{m[2]}#{MASK}"
        end
      end
      s
    end

    def self.basic?(cred)
      cred.match?(%r{\A[A-Za-z0-9+/]+={0,2}\z}) && cred.unpack1('m').include?(':')
    rescue ArgumentError
      false
    end

    # A copy of `value` with secrets masked at any depth; the original is left as it was.
    def self.value(value, depth = 0)
      case value
      when String then text(value)
      when Hash
        return "#{MASK} (nested deeper than #{MAX_DEPTH} levels)" if depth >= MAX_DEPTH

        value.to_h do |k, v|
          k = Text.utf8(k) if k.is_a?(String)
          [k, (k.is_a?(String) || k.is_a?(Symbol)) && !v.nil? && secret_key?(k) ? MASK : value(v, depth + 1)]
        end
      when Array
        return "#{MASK} (nested deeper than #{MAX_DEPTH} levels)" if depth >= MAX_DEPTH

        value.map { |v| value(v, depth + 1) }
      else value
      end
    end
  end
end
