// Live status polling and resumable chunked uploads. No framework: the pages work without
// JavaScript (plain form upload, manual reload); this only makes them nicer.
"use strict";

const CHUNK_BYTES = 8 * 1024 * 1024;
const RETRIES = 8;

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

// Refresh the element from data-poll-url every data-poll-interval ms (default 2 s) until its
// content holds [data-final].
function pollLive(container) {
  const url = container.dataset.pollUrl;
  const every = Number(container.dataset.pollInterval) || 2000;
  const tick = async () => {
    try {
      const response = await fetch(url, { headers: { "X-Requested-With": "fetch" } });
      if (response.ok) {
        container.innerHTML = await response.text();
        if (container.querySelector("[data-final]")) return;
      }
    } catch (error) { /* network blip: try again on the next tick */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, container.dataset.pollInterval ? every : 1500);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function request(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method, body, credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", ...headers },
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

// The REST API's upload URLs (/api/v1/uploads/<id>/...), from a template URL on the form.
const NO_ID = "00000000-0000-0000-0000-000000000000";
const uploadUrl = (form, id, tail = "") => form.dataset.uploadsUrl.replace(NO_ID, id) + tail;

// Send the file from wherever the server says it stands, retrying dropped connections.
async function sendChunks(form, session, file, onProgress) {
  let offset = session.received;
  let failures = 0;
  while (offset < file.size) {
    const chunk = file.slice(offset, offset + CHUNK_BYTES);
    try {
      const reply = await request("PUT", uploadUrl(form, session.id, `?offset=${offset}`), chunk,
        { "Content-Type": "application/octet-stream" });
      if (!reply.ok && reply.status !== 409) throw new Error(reply.data.detail || "upload failed");
      offset = reply.data.received;
      failures = 0;
      onProgress(offset / file.size);
    } catch (error) {
      failures += 1;
      if (failures > RETRIES) throw error;
      await sleep(Math.min(30000, 500 * 2 ** failures));
      const state = await request("GET", uploadUrl(form, session.id));
      if (state.ok) offset = state.data.received;
    }
  }
}

async function chunkedUpload(form) {
  const file = form.querySelector("input[type=file]").files[0];
  const kind = form.querySelector("input[name=kind]:checked").value;
  const bar = form.querySelector("progress");
  const message = form.querySelector("#upload-message");
  bar.hidden = false;
  const start = await request("POST", form.dataset.startUrl,
    JSON.stringify({ kind, filename: file.name, size: file.size }),
    { "Content-Type": "application/json" });
  if (!start.ok) throw new Error(start.data.detail || "The upload could not start.");
  await sendChunks(form, start.data, file, (fraction) => {
    bar.value = Math.round(fraction * 100);
    message.textContent = `Uploaded ${bar.value}%`;
  });
  message.textContent = "Checking the file…";
  const done = await request("POST", uploadUrl(form, start.data.id, "finish/"));
  if (!done.ok) throw new Error(done.data.detail || "The upload was refused.");
  window.location.assign(done.data.url);
}

function setupUpload(form) {
  form.addEventListener("submit", async (event) => {
    // The page says why the team cannot submit now (quota, window, terms): send nothing.
    if (form.dataset.blocked) { event.preventDefault(); return; }
    if (!window.fetch || !form.dataset.startUrl) return;
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await chunkedUpload(form);
    } catch (error) {
      form.querySelector("#upload-message").textContent = error.message;
      form.querySelector("#upload-message").className = "error";
      button.disabled = false;
    }
  });
}

// Pick the kind from the chosen file's name (the radio stays editable): a .zip is a code
// bundle, a .tar/.tar.gz/.tgz an image archive, a .csv a predictions file.
function detectKind(form) {
  const input = form.querySelector("input[type=file]");
  if (!input) return;
  input.addEventListener("change", () => {
    const name = (input.files[0] && input.files[0].name.toLowerCase()) || "";
    const kind = name.endsWith(".zip") ? "bundle" : name.endsWith(".csv") ? "predictions"
      : /\.(tar|tar\.gz|tgz)$/.test(name) ? "image" : "";
    const radio = kind && form.querySelector(`input[name=kind][value=${kind}]`);
    if (radio) radio.checked = true;
  });
}

// "Copy link" buttons: the clipboard where the browser allows it (a secure context, the
// user's permission); otherwise select the link in its box so the user copies it by hand.
// Without JavaScript the box and the plain link next to it remain.
function setupCopy(button) {
  const box = button.parentElement.querySelector("input.copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
    } catch (error) {
      if (box) { box.focus(); box.select(); }
      button.textContent = "Select and copy the link";
    }
    setTimeout(() => { button.textContent = "Copy link"; }, 4000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy]").forEach(setupCopy);
  document.querySelectorAll("[data-poll-url]").forEach(pollLive);
  const form = document.querySelector("#upload-form");
  if (form) { setupUpload(form); detectKind(form); }
});
