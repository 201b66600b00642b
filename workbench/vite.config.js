import { defineConfig } from 'vite'
import preact from '@preact/preset-vite'

// The build goes into the Python package, so `pip install steppe` serves it with no Node on the machine.
export default defineConfig({
  plugins: [preact()],
  base: '/__steppe/ui/',
  build: {
    outDir: '../host/static/workbench',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
})
