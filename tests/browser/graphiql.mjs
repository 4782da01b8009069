// Opens GraphiQL in headless Chromium, runs the query it opened with (development mode:
// the demo user's token in the headers), and prints the result pane's text as JSON:
// {"result": "...", "external": [urls requested outside the server]}.
// Usage: node graphiql.mjs <server url> <chromium path>
import puppeteer from "puppeteer-core";

const [base, executablePath] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith("ws://") && !url.startsWith("data:")) {
      external.push(url);
    }
  });
  await page.goto(base + "/", { waitUntil: "networkidle0", timeout: 30000 });
  await page.waitForSelector(".graphiql-execute-button", { timeout: 30000 });
  await page.click(".graphiql-execute-button");
  await page.waitForFunction(
    () => document.querySelector(".graphiql-response")?.innerText.includes("balance"),
    { timeout: 30000 },
  );
  // The editor's whole text (CodeMirror renders only the lines in view).
  const result = await page.$eval(".graphiql-response", (element) => {
    const editor = element.querySelector(".CodeMirror");
    return editor?.CodeMirror ? editor.CodeMirror.getValue() : element.innerText;
  });
  console.log(JSON.stringify({ result, external }));
} finally {
  await browser.close();
}
