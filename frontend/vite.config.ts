/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// `npm run dev` serves the UI with hot reload and forwards API calls to a running Berth
// (`cargo xtask dev` starts one on 8080; BERTH_URL points elsewhere).
const api = process.env.BERTH_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: false },
      "/health": api,
      "/ready": api,
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Every browser Berth supports has <link rel=modulepreload>; the polyfill is dead weight.
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
    // The server's CSP forbids inline scripts and styles: never inline assets as data: URLs
    // into scripts (images as data: are allowed, but keep it simple and cacheable).
    assetsInlineLimit: 0,
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    restoreMocks: true,
  },
});
