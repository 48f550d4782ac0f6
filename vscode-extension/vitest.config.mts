import { fileURLToPath } from "node:url";

import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // extension.ts imports "vscode", which only exists inside VS Code: tests get a stub.
    alias: { vscode: fileURLToPath(new URL("./test/vscodeStub.ts", import.meta.url)) },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // The integration tests start real processes (python, gopls): keep them off each other's
    // toes on a 2-core machine.
    fileParallelism: false,
  },
});
