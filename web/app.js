// taskhost web client: plain JavaScript, no build step, no framework.
//
// Settings: config.js (window.TASKHOST_CONFIG), overridden by the page's query string
// (?api=URL&region=R&client_id=ID&cognito_endpoint=URL), and the API URL field.
// Sign-in: Cognito's USER_PASSWORD_AUTH flow (InitiateAuth, the access token is used), a
// pasted token, or none (an API with auth off).
// The token and the API URL are kept in sessionStorage: they survive a reload of this tab,
// are not shared with other tabs, and are gone when the tab closes. The password is never
// stored. Task text is always written with textContent (never innerHTML), and the page's
// Content-Security-Policy allows scripts from this folder only.
"use strict";

(function () {
  const STATUSES = ["new", "in_progress", "completed", "cancelled"];
  const PRIORITIES = ["low", "medium", "high", "urgent"];
  const store = window.sessionStorage;
  const $ = (id) => document.getElementById(id);

  // ---- settings ------------------------------------------------------------------------
  const fileConfig = window.TASKHOST_CONFIG || {};
  const query = new URLSearchParams(window.location.search);
  const config = {
    apiUrl: query.get("api") || store.getItem("taskhost.api") || fileConfig.apiUrl || "",
    region: query.get("region") || fileConfig.cognitoRegion || "",
    clientId: query.get("client_id") || fileConfig.cognitoClientId || "",
    cognitoEndpoint: query.get("cognito_endpoint") || fileConfig.cognitoEndpoint || "",
  };
  function cognitoUrl() {
    if (config.cognitoEndpoint) return config.cognitoEndpoint;
    return "https://cognito-idp." + config.region + ".amazonaws.com/";
  }

  // ---- state ---------------------------------------------------------------------------
  let session = null; // {api, token (may be ""), who}
  let cursors = [null]; // cursors[i]: the `next` that opens page i (null: the first)
  let page = 0;

  // ---- messages ------------------------------------------------------------------------
  function say(text, kind) {
    const el = $("message");
    el.textContent = text;
    el.className = kind || "error";
    el.hidden = !text;
  }
  function clearMessage() { say("", ""); }

  // ---- views ---------------------------------------------------------------------------
  function showSignIn(message) {
    session = null;
    store.removeItem("taskhost.token");
    store.removeItem("taskhost.who");
    $("tasks-view").hidden = true;
    $("who").hidden = true;
    $("signin-view").hidden = false;
    $("api-url").value = config.apiUrl;
    $("password-form").hidden = !(config.clientId && (config.region || config.cognitoEndpoint));
    $("password").value = "";
    if (message) say(message, "error"); else clearMessage();
  }

  function showTasks() {
    $("signin-view").hidden = true;
    $("tasks-view").hidden = false;
    $("who").hidden = false;
    $("who-text").textContent = session.who + " at " + session.api;
  }

  // startSession: signed in once the first page of tasks loads; until then the sign-in
  // screen stays, with the reason it failed.
  async function startSession(api, token, who) {
    api = api.trim().replace(/\/+$/, "");
    session = { api: api, token: token, who: who };
    cursors = [null];
    page = 0;
    if (!(await loadPage())) {
      session = null;
      return;
    }
    config.apiUrl = api;
    store.setItem("taskhost.api", api);
    store.setItem("taskhost.token", token);
    store.setItem("taskhost.who", who);
    clearMessage();
    showTasks();
  }

  // ---- the API -------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field;
    }
  }

  // call(method, path, body): the parsed JSON body of a 2xx answer; throws ApiError.
  async function call(method, path, body) {
    const headers = {};
    if (session.token) headers["Authorization"] = "Bearer " + session.token;
    const init = { method: method, headers: headers, mode: "cors", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(session.api + path, init);
    } catch (e) {
      throw new ApiError(0, "Cannot reach the API at " + session.api + ": the network failed, or " +
        "the API does not allow this page's origin (" + window.location.origin + ") — its " +
        "cors_origin setting must be \"*\" or this origin.");
    }
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (resp.ok) return data;
    const message = data && typeof data.message === "string" ? data.message : resp.statusText;
    throw new ApiError(resp.status, message, data && typeof data.field === "string" ? data.field : undefined);
  }

  // explain(e, doing): the message for a failed call; a 401 sends the user back to sign in.
  function explain(e, doing) {
    if (!(e instanceof ApiError)) {
      say("Could not " + doing + ": " + e.message, "error");
      return;
    }
    switch (true) {
      case e.status === 0:
        say(e.message, "error");
        break;
      case e.status === 401:
        showSignIn(session && session.token
          ? "Your sign-in has expired or the API refused the token: sign in again."
          : "This API needs you to sign in (it answered 401 Unauthorized).");
        break;
      case e.status === 400:
        say("Could not " + doing + ": " + e.message + (e.field ? " (" + e.field + ")" : ""), "error");
        break;
      case e.status === 404:
        say("Could not " + doing + ": that task does not exist any more (deleted elsewhere?).", "error");
        break;
      case e.status === 413:
        say("Could not " + doing + ": the request is too large.", "error");
        break;
      case e.status === 429 || e.status === 503:
        say("Could not " + doing + ": the service is busy (" + e.status + "); try again in a moment.", "error");
        break;
      case e.status >= 500:
        say("Could not " + doing + ": the API failed (" + e.status + " " + e.message + "); try again.", "error");
        break;
      default:
        say("Could not " + doing + ": " + e.status + " " + e.message, "error");
    }
  }

  // ---- the list ------------------------------------------------------------------------
  function option(value, selected) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = value;
    o.selected = value === selected;
    return o;
  }

  function choice(name, values, task) {
    const s = document.createElement("select");
    s.className = name;
    s.setAttribute("aria-label", name + " of " + task.task);
    if (values.indexOf(task[name]) < 0) s.appendChild(option(task[name], task[name]));
    values.forEach((v) => s.appendChild(option(v, task[name])));
    s.addEventListener("change", () => update(task.id, name, s.value, s));
    return s;
  }

  function row(task) {
    const tr = document.createElement("tr");
    tr.dataset.id = task.id;
    const text = document.createElement("td");
    text.className = "text";
    text.textContent = task.task; // never innerHTML: task text is data
    const status = document.createElement("td");
    status.appendChild(choice("status", STATUSES, task));
    const priority = document.createElement("td");
    priority.appendChild(choice("priority", PRIORITIES, task));
    const created = document.createElement("td");
    created.className = "created";
    created.textContent = new Date(task.created_at * 1000).toLocaleString();
    const actions = document.createElement("td");
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete";
    del.textContent = "Delete";
    del.setAttribute("aria-label", "Delete " + task.task);
    del.addEventListener("click", () => remove(task.id, del));
    actions.appendChild(del);
    [text, status, priority, created, actions].forEach((td) => tr.appendChild(td));
    tr.classList.add("status-" + task.status);
    return tr;
  }

  async function loadPage() {
    const limit = $("page-size").value;
    const cursor = cursors[page];
    let data;
    try {
      data = await call("GET", "/tasks?limit=" + encodeURIComponent(limit) +
        (cursor ? "&next=" + encodeURIComponent(cursor) : ""));
    } catch (e) {
      if (e instanceof ApiError && e.status === 400 && e.field === "next") {
        // A cursor from before a redeploy (a new secret): start again from the first page.
        cursors = [null];
        page = 0;
      }
      explain(e, "load the tasks");
      return false;
    }
    const list = $("task-list");
    list.replaceChildren(...data.items.map(row));
    $("empty").hidden = data.items.length > 0;
    cursors.length = page + 1;
    if (data.next) cursors.push(data.next);
    $("prev-page").disabled = page === 0;
    $("next-page").disabled = !data.next;
    $("page-no").textContent = "Page " + (page + 1);
    document.body.dataset.loaded = String(Date.now());
    return true;
  }

  // ---- changes -------------------------------------------------------------------------
  async function create(ev) {
    ev.preventDefault();
    const input = $("new-task");
    const button = $("create-submit");
    button.disabled = true;
    try {
      await call("POST", "/tasks", { task: input.value, priority: $("new-priority").value });
      input.value = "";
      clearMessage();
      cursors = [null];
      page = 0;
      await loadPage();
    } catch (e) {
      explain(e, "add the task");
    } finally {
      button.disabled = false;
    }
  }

  async function update(id, field, value, control) {
    control.disabled = true;
    const body = {};
    body[field] = value;
    try {
      const data = await call("PUT", "/tasks/" + encodeURIComponent(id), body);
      const tr = document.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
      if (tr) tr.replaceWith(row(data.task));
      clearMessage();
    } catch (e) {
      explain(e, "change the " + field);
      if (session) await loadPage();
    } finally {
      control.disabled = false;
    }
  }

  async function remove(id, button) {
    button.disabled = true;
    try {
      await call("DELETE", "/tasks/" + encodeURIComponent(id));
      clearMessage();
    } catch (e) {
      explain(e, "delete the task");
      if (!(e instanceof ApiError) || e.status !== 404) {
        button.disabled = false;
        return;
      }
    }
    if (session) await loadPage();
  }

  // ---- sign-in -------------------------------------------------------------------------
  function apiUrlOrSay() {
    const api = $("api-url").value.trim();
    if (!/^https?:\/\/[^/]/.test(api)) {
      say("Give the API URL first (http:// or https://): `terraform output -raw api_endpoint`.", "error");
      $("api-url").focus();
      return null;
    }
    return api;
  }

  const COGNITO_ERRORS = {
    NotAuthorizedException: "Wrong email or password.",
    UserNotFoundException: "Wrong email or password.",
    InvalidPasswordException: "Wrong email or password.", // cognito-local's answer to a wrong one
    UserNotConfirmedException: "This account is not confirmed yet.",
    PasswordResetRequiredException: "This account must reset its password first.",
    TooManyRequestsException: "Too many attempts: wait a moment and try again.",
    InvalidParameterException: "Cognito refused the request (is USER_PASSWORD_AUTH allowed for this app client?).",
    ResourceNotFoundException: "Cognito does not know this app client id (check cognitoClientId and the region).",
  };

  async function signInWithPassword(ev) {
    ev.preventDefault();
    const api = apiUrlOrSay();
    if (!api) return;
    const button = $("password-submit");
    button.disabled = true;
    clearMessage();
    let resp, data;
    try {
      resp = await fetch(cognitoUrl(), {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
        body: JSON.stringify({
          AuthFlow: "USER_PASSWORD_AUTH",
          ClientId: config.clientId,
          AuthParameters: { USERNAME: $("email").value, PASSWORD: $("password").value },
        }),
      });
      data = await resp.json().catch(() => ({}));
    } catch (e) {
      say("Cannot reach Cognito at " + cognitoUrl() + " (network error).", "error");
      button.disabled = false;
      return;
    }
    button.disabled = false;
    $("password").value = "";
    if (!resp.ok) {
      const type = String(data.__type || data.code || "").split("#").pop();
      say("Sign-in failed: " + (COGNITO_ERRORS[type] || (type + " " + (data.message || resp.status))), "error");
      return;
    }
    if (data.ChallengeName) {
      say("Sign-in needs a step this page does not do (" + data.ChallengeName + "): set a " +
        "permanent password first, e.g. with scripts/token.sh --create.", "error");
      return;
    }
    const token = data.AuthenticationResult && data.AuthenticationResult.AccessToken;
    if (!token) {
      say("Sign-in failed: Cognito sent no access token.", "error");
      return;
    }
    await startSession(api, token, $("email").value);
  }

  async function signInWithToken(ev) {
    ev.preventDefault();
    const api = apiUrlOrSay();
    if (!api) return;
    const token = $("token").value.trim().replace(/^Bearer\s+/i, "");
    if (token.split(".").length !== 3) {
      say("That is not a JWT (three dot-separated parts): paste the access token itself.", "error");
      return;
    }
    $("token").value = "";
    await startSession(api, token, tokenUser(token));
  }

  async function continueWithout(ev) {
    ev.preventDefault();
    const api = apiUrlOrSay();
    if (!api) return;
    await startSession(api, "", "without signing in");
  }

  // tokenUser(token): a name to show for the token (not verified here: the API verifies it).
  function tokenUser(token) {
    try {
      const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return String(payload.username || payload.email || payload["cognito:username"] || payload.sub || "token");
    } catch (e) {
      return "token";
    }
  }

  // ---- wiring --------------------------------------------------------------------------
  $("password-form").addEventListener("submit", signInWithPassword);
  $("token-form").addEventListener("submit", signInWithToken);
  $("anon-form").addEventListener("submit", continueWithout);
  $("create-form").addEventListener("submit", create);
  $("signout").addEventListener("click", () => { showSignIn(); say("Signed out.", "info"); });
  $("next-page").addEventListener("click", () => { page += 1; loadPage(); });
  $("prev-page").addEventListener("click", () => { page = Math.max(0, page - 1); loadPage(); });
  $("page-size").addEventListener("change", () => { cursors = [null]; page = 0; loadPage(); });

  const saved = store.getItem("taskhost.token");
  if (saved !== null && config.apiUrl) {
    session = { api: config.apiUrl, token: saved, who: store.getItem("taskhost.who") || "token" };
    showTasks();
    loadPage();
  } else {
    showSignIn();
  }
})();
