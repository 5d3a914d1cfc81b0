// A reviewer's round in the console, in headless Chromium at 1280x800: sign in, find the
// job, play source and dub together, read the QC timeline, reject a flagged shot with a
// reason, re-run it as a new version, wait for it, approve every shot. Prints what it saw
// as JSON; screenshots go to the artefacts folder.
import chromium from "@sparticuz/chromium";
import puppeteer from "puppeteer-core";

const [base, key, jobId, artifacts] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: await chromium.executablePath(),
  args: [...chromium.args, "--autoplay-policy=no-user-gesture-required"],
  headless: true,
  defaultViewport: { width: 1280, height: 800 },
  protocolTimeout: 400000, // the wait for the new version runs minutes on a busy machine
});
const seen = {};
const shoot = (page, name, fullPage = false) =>
  page.screenshot({ path: `${artifacts}/${name}.png`, fullPage });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60000);
  await page.goto(`${base}/console`, { waitUntil: "networkidle0" }); // -> the sign-in form
  await page.type("#api_key", key);
  await Promise.all([page.waitForNavigation(), page.click("#login button[type=submit]")]);
  seen.listed = (await page.$(`tr[data-job="${jobId}"]`)) !== null;
  await shoot(page, "1-jobs");

  await Promise.all([page.waitForNavigation(), page.click(`tr[data-job="${jobId}"] a`)]);
  await page.waitForFunction(() =>
    document.getElementById("dub").readyState >= 2 && document.getElementById("source").readyState >= 2);
  await page.click("#play");
  await page.waitForFunction(() =>
    document.getElementById("dub").currentTime > 0.6 && document.getElementById("source").currentTime > 0.6,
    { timeout: 30000 });
  seen.played = await page.evaluate(() => ({
    source: document.getElementById("source").currentTime,
    dub: document.getElementById("dub").currentTime,
  }));
  await page.click("#play"); // pause both
  seen.timeline = await page.evaluate(() => ({
    shots: document.querySelectorAll("#timeline .shot").length,
    flagged: document.querySelectorAll("#timeline .shot.flagged").length,
  }));
  await shoot(page, "2-job");

  const shot = await page.$eval("#timeline .shot.flagged", (el) => el.dataset.shot);
  await page.click(`#timeline .shot[data-shot="${shot}"]`); // seeks both players there
  await page.select(`#shot-${shot} form.reject select[name=reason]`, "sync");
  await page.select(`#shot-${shot} form.reject select[name=severity]`, "major");
  await page.type(`#shot-${shot} form.reject input[name=comment]`, "late on the plosives");
  await Promise.all([page.waitForNavigation(), page.click(`#shot-${shot} form.reject button`)]);
  seen.afterReject = await page.$eval("#review-state", (el) => el.textContent);
  await shoot(page, "3-rejected");

  await page.click(`#shot-${shot} input[type=checkbox]`);
  await page.select("#rerun select[name=engine]", "warp");
  await Promise.all([page.waitForNavigation(), page.click("#rerun-submit")]);
  seen.version = page.url();
  // The page reloads itself when the version finishes.
  await page.waitForFunction(() => ["succeeded", "failed", "cancelled"].includes(
    document.getElementById("job")?.dataset.state), { timeout: 300000, polling: 1000 });
  const ended = await page.$eval("#job", (el) => el.dataset.state);
  if (ended !== "succeeded") {
    throw new Error(`the version ended ${ended}: ${await page.$eval("main", (el) => el.innerText)}`);
  }
  await shoot(page, "4-version");

  for (;;) {
    const pending = await page.$$eval("tr[id^=shot-]:not(.decision-approved)",
      (rows) => rows.map((row) => row.id));
    if (!pending.length) break;
    await Promise.all([page.waitForNavigation(), page.click(`#${pending[0]} form.approve button`)]);
  }
  seen.final = await page.$eval("#review-state", (el) => el.textContent);
  await shoot(page, "5-approved", true);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
