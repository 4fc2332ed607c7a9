// flow.mjs — the web client (web/) end to end in headless Chromium, driven by puppeteer-core.
// Run by test_web.sh, which starts the page's static server and the API on two loopback ports
// (two origins: every non-simple request is preflighted for real) and sets:
//   CHROMIUM  WEB_URL  API_URL  AUTH (off|on)  SCREENSHOT  RESULTS (a JSON file written here)
//   with AUTH=on: COGNITO_ENDPOINT COGNITO_CLIENT_ID WEB_USER WEB_PASSWORD TOKEN (another
//   user's access token, pasted)
// Prints "ok - ..." / "FAIL - ..." lines; exits 1 on any failure.
import puppeteer from "puppeteer-core";
import { writeFileSync } from "node:fs";

const env = process.env;
const AUTH = env.AUTH === "on";
let passed = 0;
let failed = 0;
const ok = (name) => { passed += 1; console.log("ok - " + name); };
const bad = (name, why) => { failed += 1; console.log("FAIL - " + name + (why ? ": " + why : "")); };
const check = (name, cond, why) => (cond ? ok(name) : bad(name, why));

// The API, straight from node (no CORS): to verify what the page did.
async function api(method, path, token, body) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(env.API_URL + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// Chromium as root (CI containers) cannot use its sandbox: --no-sandbox there only.
const args = ["--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage"];
if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
const browser = await puppeteer.launch({ executablePath: env.CHROMIUM, headless: true, args,
  timeout: 60000, protocolTimeout: 60000 });
const page = await browser.newPage();
page.setDefaultTimeout(20000);
await page.setViewport({ width: 1100, height: 900 });

// Every request the browser sends, preflights included (CDP reports them as type Preflight).
const sent = [];
const cdp = await page.createCDPSession();
await cdp.send("Network.enable");
cdp.on("Network.requestWillBeSent", (e) => {
  sent.push({ method: e.request.method, url: e.request.url, type: e.type, headers: e.request.headers });
});
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });

const $text = (sel) => page.$eval(sel, (el) => el.textContent);
const visible = (sel) => page.$eval(sel, (el) => !el.hidden);
const message = () => page.$eval("#message", (el) => (el.hidden ? "" : el.textContent));
async function waitMessage(re) {
  try {
    await page.waitForFunction((src) => {
      const el = document.getElementById("message");
      return !el.hidden && new RegExp(src).test(el.textContent);
    }, {}, re.source);
    return true;
  } catch (e) {
    return false;
  }
}
async function waitLoaded(after) {
  await page.waitForFunction((t) => Number(document.body.dataset.loaded || 0) > t, {}, after);
}
const loadedAt = () => page.evaluate(() => Number(document.body.dataset.loaded || 0));
const rows = () => page.$$eval("#task-list tr", (trs) => trs.map((tr) => ({
  id: tr.dataset.id, text: tr.querySelector("td.text").textContent,
  status: tr.querySelector("select.status").value, priority: tr.querySelector("select.priority").value })));

let query = "?api=" + encodeURIComponent(env.API_URL);
if (AUTH) {
  query += "&region=us-east-1&client_id=" + encodeURIComponent(env.COGNITO_CLIENT_ID) +
    "&cognito_endpoint=" + encodeURIComponent(env.COGNITO_ENDPOINT);
}
let token = ""; // the token the page uses, for the node-side checks

try {
  if (env.EXPECT_CORS_REFUSED === "1") {
    // ---- an API whose CORS origin is another one: the browser refuses its answers ----------
    await page.goto(env.WEB_URL + query, { waitUntil: "load" });
    await page.click("#anon-submit");
    check("an API that does not allow this origin: the browser blocks it, the page says so",
      await waitMessage(/Cannot reach the API at .*does not allow this page's origin/), await message());
    check("... and stays on the sign-in screen", await visible("#signin-view"));
    throw null; // done
  }
  // ---- an API that cannot be reached: a clear message ------------------------------------
  await page.goto(env.WEB_URL + "?api=" + encodeURIComponent("http://127.0.0.1:9"), { waitUntil: "load" });
  check("the sign-in screen shows first", await visible("#signin-view"));
  await page.click("#anon-submit");
  check("an unreachable API: a message naming the network or CORS",
    await waitMessage(/Cannot reach the API at http:\/\/127\.0\.0\.1:9.*cors_origin/), await message());

  await page.goto(env.WEB_URL + query, { waitUntil: "load" });
  check("the API URL comes from the query string", (await page.$eval("#api-url", (el) => el.value)) === env.API_URL);

  if (AUTH) {
    // ---- auth on: no token → 401 → back to sign-in ------------------------------------------
    check("the email/password form is shown (Cognito configured)", await visible("#password-form"));
    await page.click("#anon-submit");
    check("no token: the 401 sends the user back to sign in with a message",
      await waitMessage(/needs you to sign in/), await message());
    check("no token: the sign-in screen again", await visible("#signin-view"));

    // ---- a wrong password: Cognito's error, said plainly ------------------------------------
    await page.type("#email", env.WEB_USER);
    await page.type("#password", "not-the-password-1A!");
    await page.click("#password-submit");
    check("a wrong password: 'Wrong email or password.'", await waitMessage(/Wrong email or password/), await message());

    // ---- a pasted token with a bad signature: 401 → sign in again ---------------------------
    const [h, p, s] = env.TOKEN.split(".");
    await page.type("#token", h + "." + p + "." + (s[0] === "A" ? "B" : "A") + s.slice(1));
    await page.click("#token-submit");
    check("a refused token: back to sign in, 'expired or ... refused'",
      await waitMessage(/expired or the API refused the token/), await message());

    // ---- a pasted token that works: its own (empty) list, then sign out ---------------------
    await page.type("#token", env.TOKEN);
    await page.click("#token-submit");
    await page.waitForSelector("#tasks-view:not([hidden])");
    ok("a pasted token: signed in");
    await page.click("#signout");
    await page.waitForSelector("#signin-view:not([hidden])");
    check("sign out: the token is gone from sessionStorage",
      (await page.evaluate(() => sessionStorage.getItem("taskhost.token"))) === null);

    // ---- the real sign-in: email and password against cognito-local -------------------------
    await page.$eval("#email", (el) => { el.value = ""; });
    await page.type("#email", env.WEB_USER);
    await page.type("#password", env.WEB_PASSWORD);
    await page.click("#password-submit");
    await page.waitForSelector("#tasks-view:not([hidden])");
    ok("signed in with email and password (Cognito USER_PASSWORD_AUTH)");
    token = await page.evaluate(() => sessionStorage.getItem("taskhost.token"));
    check("the token is in sessionStorage, the password is not",
      token && token.split(".").length === 3 &&
      !(await page.evaluate((pw) => JSON.stringify(sessionStorage).includes(pw), env.WEB_PASSWORD)));
    check("the password field is cleared", (await page.$eval("#password", (el) => el.value)) === "");
  } else {
    await page.click("#anon-submit");
    await page.waitForSelector("#tasks-view:not([hidden])");
    ok("auth off: in without a token");
  }
  await page.waitForFunction(() => document.body.dataset.loaded);

  // ---- create: 7 tasks, one of them HTML (shown as text, never run) ------------------------
  // The page size's change reloads the list: wait for that load, or the first create's wait
  // below would take it for its own and the next task be typed while that create is running.
  const sized = await loadedAt();
  await page.select("#page-size", "5");
  await waitLoaded(sized);
  const texts = ["first", "second", "third", "fourth", "<img src=x onerror=\"window.__xss=1\"><b>bold?</b>", "sixth", "seventh"];
  for (const [i, text] of texts.entries()) {
    await page.waitForFunction(() => !document.querySelector("#create-submit").disabled);
    const t = await loadedAt();
    await page.$eval("#new-task", (el) => { el.value = ""; });
    await page.type("#new-task", text);
    if (i === 6) await page.select("#new-priority", "high");
    await page.click("#create-submit");
    await waitLoaded(t);
  }
  let r = await rows();
  check("the list: newest first, 5 on the first page",
    r.length === 5 && r[0].text === "seventh" && r[4].text === "third",
    JSON.stringify(r.map((x) => x.text)));
  check("create: the priority chosen is the task's", r[0].priority === "high" && r[1].priority === "medium");
  check("HTML in a task is shown as text", r.some((x) => x.text === texts[4]));
  check("... and never becomes markup or runs",
    (await page.$$("#task-list img, #task-list b")).length === 0 &&
    (await page.evaluate(() => window.__xss)) === undefined);

  // ---- paging ------------------------------------------------------------------------------
  check("page 1: 'Older' enabled, 'Newer' disabled",
    !(await page.$eval("#next-page", (el) => el.disabled)) && (await page.$eval("#prev-page", (el) => el.disabled)));
  let t = await loadedAt();
  await page.click("#next-page");
  await waitLoaded(t);
  const r2 = await rows();
  check("page 2: the two oldest, none of page 1",
    r2.length === 2 && r2[0].text === "second" && r2[1].text === "first" &&
    !r2.some((x) => r.some((y) => y.id === x.id)), JSON.stringify(r2.map((x) => x.text)));
  check("page 2: 'Older' disabled (the end)", await page.$eval("#next-page", (el) => el.disabled));
  t = await loadedAt();
  await page.click("#prev-page");
  await waitLoaded(t);
  check("back to page 1", JSON.stringify((await rows()).map((x) => x.id)) === JSON.stringify(r.map((x) => x.id)));

  // ---- change status and priority ----------------------------------------------------------
  const target = r[1]; // "sixth"
  const sel = (name) => `tr[data-id="${target.id}"] select.${name}`;
  let done = page.waitForResponse((res) => res.request().method() === "PUT" && res.url().endsWith(target.id));
  await page.select(sel("status"), "completed");
  check("status change: the PUT succeeds", (await done).status() === 200);
  await page.waitForFunction((s) => document.querySelector(s) && !document.querySelector(s).disabled, {}, sel("status"));
  done = page.waitForResponse((res) => res.request().method() === "PUT" && res.url().endsWith(target.id));
  await page.select(sel("priority"), "urgent");
  check("priority change: the PUT succeeds", (await done).status() === 200);
  await page.waitForFunction((s) => document.querySelector(s) && !document.querySelector(s).disabled, {}, sel("priority"));
  const stored = await api("GET", "/tasks/" + target.id, token);
  check("status and priority read back from the API",
    stored.status === 200 && stored.body.status === "completed" && stored.body.priority === "urgent",
    JSON.stringify(stored));
  check("the row shows them", (await page.$eval(sel("status"), (el) => el.value)) === "completed" &&
    (await page.$eval(sel("priority"), (el) => el.value)) === "urgent");

  // ---- delete ------------------------------------------------------------------------------
  const victim = r[0]; // "seventh"
  t = await loadedAt();
  await page.click(`tr[data-id="${victim.id}"] button.delete`);
  await waitLoaded(t);
  check("delete: the row is gone", !(await rows()).some((x) => x.id === victim.id));
  check("delete: the API says 404", (await api("GET", "/tasks/" + victim.id, token)).status === 404);

  // ---- errors, each with a clear message ---------------------------------------------------
  await page.$eval("#new-task", (el) => { el.value = ""; });
  await page.type("#new-task", "   ");
  await page.click("#create-submit");
  check("a blank task: the API's 400 message, naming the field",
    await waitMessage(/Could not add the task: 'task' must not be empty \(task\)/), await message());
  const gone = (await rows())[0];
  await api("DELETE", "/tasks/" + gone.id, token); // deleted elsewhere
  t = await loadedAt();
  await page.click(`tr[data-id="${gone.id}"] button.delete`);
  check("a task deleted elsewhere: 'does not exist any more'",
    await waitMessage(/does not exist any more/), await message());
  await waitLoaded(t);
  check("... and the list is reloaded without it", !(await rows()).some((x) => x.id === gone.id));

  await page.screenshot({ path: env.SCREENSHOT, fullPage: true });
  ok("screenshot: " + env.SCREENSHOT);

  if (AUTH) {
    // ---- a token that stops working mid-session: back to sign-in ----------------------------
    await page.evaluate(() => sessionStorage.setItem("taskhost.token", "x.y.z"));
    await page.reload({ waitUntil: "load" });
    check("a token refused later: back to sign in with a message",
      await waitMessage(/expired or the API refused the token/), await message());
  }

  // ---- what the browser sent --------------------------------------------------------------
  const api0 = new URL(env.API_URL).origin;
  const toApi = sent.filter((s) => s.url.startsWith(api0));
  const preflights = toApi.filter((s) => s.method === "OPTIONS");
  const reqHeaders = (s) => String(Object.entries(s.headers).find(([k]) => k.toLowerCase() === "access-control-request-headers")?.[1] || "").toLowerCase();
  check("the browser sent CORS preflights to the API", preflights.length > 0, JSON.stringify(toApi.map((s) => s.method)));
  check("a preflight asked for Content-Type (POST/PUT)", preflights.some((s) => reqHeaders(s).includes("content-type")));
  if (AUTH) {
    check("a preflight asked for Authorization", preflights.some((s) => reqHeaders(s).includes("authorization")));
    check("a preflight asked for Authorization and Content-Type together",
      preflights.some((s) => reqHeaders(s).includes("authorization") && reqHeaders(s).includes("content-type")));
  }
  check("no page errors", pageErrors.filter((e) => !/Failed to load resource|ERR_CONNECTION_REFUSED|status of 40[014]/.test(e)).length === 0,
    JSON.stringify(pageErrors));
  writeFileSync(env.RESULTS, JSON.stringify({ preflights: preflights.map((s) => ({ url: s.url, headers: reqHeaders(s) })) }, null, 1));
} catch (e) {
  if (e !== null) {
    bad("the flow ran to its end", e.stack || String(e));
    try { await page.screenshot({ path: env.SCREENSHOT.replace(/\.png$/, "-failed.png"), fullPage: true }); } catch (e2) { /* best effort */ }
  }
} finally {
  await browser.close();
}
console.log(passed + " passed, " + failed + " failed");
process.exit(failed ? 1 : 0);
