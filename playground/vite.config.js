// Builds the playground into dist/, which is committed and embedded in the server binary
// (api/src/web_assets.rs). Everything the page needs is in dist/: no CDN, no third-party origin.
import { defineConfig } from 'vite';

export default defineConfig({
  // The server serves dist/ under this prefix (see PLAYGROUND_PREFIX in api/src/http.rs).
  base: '/playground/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The build is committed: no source maps, and names that depend on content only, so
    // `npm ci && npm run build` reproduces dist/ byte for byte.
    sourcemap: false,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 8000,
    reportCompressedSize: false,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React libraries' "use client" markers mean nothing in a client-only bundle.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  worker: { format: 'es' },
});
