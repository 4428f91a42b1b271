// Signing in: the key is asked for once, checked with GET /v1/me, and kept in this tab's
// sessionStorage (see api.js); a keyless server opens straight in.

import { session, whoami } from "./api.js";

const $ = (id) => document.getElementById(id);

function signOut(message) {
  session.key = "";
  $("app").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("whoami").textContent = "";
  $("login-error").textContent = message || "";
  $("api-key").value = "";
  $("api-key").focus();
  document.body.dataset.state = "login";
}

async function enter(me, onEnter) {
  session.auth = me.auth;
  session.scope = me.scope;
  session.workspace = me.workspace;
  document.body.dataset.scope = me.scope;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = me.auth === "none";
  const who = [me.workspace && `workspace ${me.workspace}`, me.scope === "read" ? "read-only" : "",
    me.auth === "none" ? "no key needed" : ""].filter(Boolean).join(" · ");
  $("whoami").textContent = who;
  for (const node of document.querySelectorAll(".write-only")) {
    if (!session.canWrite) node.remove();
    else node.hidden = false;
  }
  await onEnter();
  document.body.dataset.state = "ready";
}

// Show the page for the stored key (or no key), or the sign-in form; onEnter then loads it.
export async function signIn(onEnter) {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    try {
      const me = await whoami(key);
      session.key = key;
      $("api-key").value = "";
      await enter(me, onEnter);
    } catch (err) {
      session.key = "";
      $("login-error").textContent = err.status === 401
        ? "That key was not accepted: check it and try again."
        : `Could not sign in: ${err.message}`;
      $("api-key").select();
    } finally {
      $("login-submit").disabled = false;
    }
  });
  $("logout").addEventListener("click", () => {
    session.key = "";
    location.reload();
  });
  try {
    const me = await whoami(session.key || "");
    return enter(me, onEnter);
  } catch (err) {
    if (err.status === 401) {
      return signOut(session.key ? "That key was not accepted: enter a valid key." : "");
    }
    $("login").hidden = false;
    $("login-error").textContent = `The server did not answer: ${err.message}`;
  }
}
