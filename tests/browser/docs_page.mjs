// Load a gateway's API docs page in headless Chromium with every request outside the
// gateway refused (and no name resolving but 127.0.0.1), as on a closed network, and
// print what rendered: {"operations": [...], "outside": [requests that tried to leave]}.
import chromium from "@sparticuz/chromium";
import puppeteer from "puppeteer-core";

const [url, kind] = process.argv.slice(2); // kind: swagger | redoc
const origin = new URL(url).origin;
const selector = kind === "redoc" ? "[data-section-id*='operation/']" : ".opblock-summary-path";
const browser = await puppeteer.launch({
  executablePath: await chromium.executablePath(),
  args: [...chromium.args, "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
  headless: true,
});
const outside = [];
try {
  const page = await browser.newPage();
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const target = request.url();
    if (target.startsWith(origin) || target.startsWith("data:") || target.startsWith("blob:")) {
      request.continue();
    } else {
      outside.push(target);
      request.abort();
    }
  });
  await page.goto(url, { waitUntil: "networkidle0", timeout: 60000 });
  await page.waitForSelector(selector, { timeout: 60000 });
  const operations = await page.$$eval(selector, (nodes) =>
    nodes.map((n) => n.getAttribute("data-path") || n.getAttribute("data-section-id")));
  console.log(JSON.stringify({ operations, outside }));
} finally {
  await browser.close();
}
