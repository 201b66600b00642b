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
  // `npm run dev`: the page with hot reload; the API, the stream client and socket from a running host
  server: {
    proxy: {
      '/__steppe/api': process.env.STEPPE_URL || 'http://127.0.0.1:3000',
      '/__steppe/dlq': process.env.STEPPE_URL || 'http://127.0.0.1:3000',
      '/__steppe/client.js': process.env.STEPPE_URL || 'http://127.0.0.1:3000',
    },
  },
})
