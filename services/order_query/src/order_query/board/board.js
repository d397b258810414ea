// The live order board (docs/board.md). No framework, no build step: the page signs in at
// /auth/token, reads GET /orders/stream with a streaming fetch (so the token travels in the
// Authorization header, never in a URL), and keeps one card per order in the column of its
// status. Tokens live in this page's memory only.
"use strict";

(() => {
  const STATUSES = ["PENDING", "PAID", "SHIPPED", "CANCELED"];
  const NEXT = { PENDING: "PAID", PAID: "SHIPPED", SHIPPED: "CANCELED" };
  const $ = (id) => document.getElementById(id);
  const session = { access: null, refresh: null, me: null };
  const orders = new Map(); // id -> the newest version of the order shown
  let lastEventId = null; // sent back as Last-Event-ID when the stream reconnects
  let retryMs = 1000;
  let stream = null; // the AbortController of the stream being read

  // --- talking to the API --------------------------------------------------------------
  async function api(path, options = {}, retried = false) {
    const headers = new Headers(options.headers || {});
    if (session.access) headers.set("Authorization", `Bearer ${session.access}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401 && session.refresh && !retried && (await refresh())) {
      return api(path, options, true);
    }
    return response;
  }

  async function refresh() {
    const response = await fetch("/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh }),
    });
    if (!response.ok) {
      signOut("Your session has ended: sign in again.");
      return false;
    }
    const tokens = await response.json();
    session.access = tokens.access_token;
    session.refresh = tokens.refresh_token;
    return true;
  }

  async function problem(response) {
    try {
      const { error } = await response.json();
      let message = error.message;
      if (Array.isArray(error.details)) {
        message += ": " + error.details.map((d) => `${(d.loc || []).at(-1)}: ${d.msg}`).join("; ");
      } else if (error.details && error.details.status) {
        message += ` (it is ${error.details.status})`;
      }
      return message;
    } catch {
      return `The server answered ${response.status}`;
    }
  }

  function randomKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // --- signing in and out ---------------------------------------------------------------
  async function signIn(event) {
    event.preventDefault();
    const form = event.target;
    const username = form.username.value.trim();
    const password = form.password.value;
    const creating = !$("new-account").hidden;
    $("sign-in-error").textContent = "";
    $("sign-in-button").disabled = true;
    try {
      if (creating) {
        const created = await fetch("/auth/create_user", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username, email: form.email.value.trim(), password }),
        });
        if (!created.ok) throw new Error(await problem(created));
      }
      const answer = await fetch("/auth/token", {
        method: "POST",
        body: new URLSearchParams({ username, password }),
      });
      if (!answer.ok) throw new Error(await problem(answer));
      const tokens = await answer.json();
      session.access = tokens.access_token;
      session.refresh = tokens.refresh_token;
      const me = await api("/auth/me");
      if (!me.ok) throw new Error(await problem(me));
      session.me = await me.json();
      form.reset();
      start();
    } catch (error) {
      $("sign-in-error").textContent = error.message;
    } finally {
      $("sign-in-button").disabled = false;
    }
  }

  function start() {
    const me = session.me;
    $("who").textContent = `${me.username} (${me.role === "admin" ? "admin: every order" : "your orders"})`;
    for (const id of ["who", "sign-out", "connection", "board"]) $(id).hidden = false;
    $("sign-in").hidden = true;
    document.body.classList.toggle("admin", me.role === "admin");
    $("item-name").focus();
    follow();
  }

  function signOut(message) {
    if (stream) stream.abort();
    stream = null;
    if (session.refresh && !message) {
      fetch("/auth/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refresh }),
      });
    }
    Object.assign(session, { access: null, refresh: null, me: null });
    orders.clear();
    lastEventId = null;
    for (const list of document.querySelectorAll("ul[data-status]")) list.replaceChildren();
    counts();
    for (const id of ["who", "sign-out", "connection", "board"]) $(id).hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("username").focus();
  }

  // --- the stream -------------------------------------------------------------------------
  async function follow() {
    while (session.access) {
      const controller = new AbortController();
      stream = controller;
      try {
        const headers = { Authorization: `Bearer ${session.access}`, Accept: "text/event-stream" };
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        const response = await fetch("/orders/stream", {
          headers,
          signal: controller.signal,
          cache: "no-store",
        });
        if (response.status === 401) {
          if (!(await refresh())) return;
          continue;
        }
        if (!response.ok) throw new Error(await problem(response));
        connection("Live", "live");
        await read(response.body);
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (stream !== controller) return;
      connection("Reconnecting…", "down");
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replaceAll("\r\n", "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(parse(buffer.slice(0, end)));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  function parse(block) {
    const event = { type: "message", data: [], id: null };
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") event.data.push(value);
      else if (field === "event") event.type = value;
      else if (field === "id") event.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    return event;
  }

  function dispatch(event) {
    if (event.id) lastEventId = event.id;
    if (!event.data.length) return;
    const data = JSON.parse(event.data.join("\n"));
    if (event.type === "snapshot") {
      const listed = new Set(data.orders.map((order) => order.id));
      for (const id of [...orders.keys()]) if (!listed.has(id)) remove(id);
      for (const order of data.orders) show(order, false);
    } else if (event.type === "order") {
      show(data, true);
    }
  }

  // --- the cards --------------------------------------------------------------------------
  const short = (id) => id.slice(0, 8);

  function show(order, announce) {
    const known = orders.get(order.id);
    if (known && known.version >= order.version) return; // never an older version
    if (order.is_deleted) {
      remove(order.id);
      if (announce && known) say(`Order ${short(order.id)} was deleted`);
      return;
    }
    orders.set(order.id, order);
    let card = $(`order-${order.id}`);
    if (!card) card = newCard(order);
    fill(card, order);
    const list = document.querySelector(`ul[data-status="${order.status}"]`);
    if (card.parentElement !== list) place(list, card, order);
    if (announce && known && known.status !== order.status) {
      card.classList.remove("moved");
      void card.offsetWidth; // restart the highlight
      card.classList.add("moved");
      say(`Order ${short(order.id)} is now ${order.status}`);
    } else if (announce && !known) {
      say(`Order ${short(order.id)} created: ${order.status}`);
    }
    counts();
  }

  function remove(id) {
    orders.delete(id);
    const card = $(`order-${id}`);
    if (card) card.remove();
    counts();
  }

  function newCard(order) {
    const card = document.createElement("li");
    card.className = "card";
    card.id = `order-${order.id}`;
    card.dataset.orderId = order.id;
    const title = document.createElement("h4");
    title.id = `title-${order.id}`;
    title.textContent = `Order ${short(order.id)}`;
    card.setAttribute("aria-labelledby", title.id);
    const items = document.createElement("p");
    items.className = "items";
    const meta = document.createElement("p");
    meta.className = "meta";
    const owner = document.createElement("p");
    owner.className = "owner";
    owner.textContent = `user ${short(order.user_id)}`;
    const actions = document.createElement("div");
    actions.className = "actions";
    card.append(title, items, meta, owner, actions);
    return card;
  }

  function fill(card, order) {
    card.dataset.status = order.status;
    card.dataset.version = String(order.version);
    card.querySelector(".items").textContent = order.items
      .map((item) => `${item.quantity} × ${item.name}`)
      .join(", ");
    const updated = new Date(order.updated_at);
    card.querySelector(".meta").textContent =
      `${order.total_price} ${order.currency || ""} · v${order.version} · ${updated.toLocaleTimeString()}`;
    const actions = card.querySelector(".actions");
    actions.replaceChildren();
    const next = NEXT[order.status];
    if (next && next !== "CANCELED") actions.append(button(order, next, `Mark ${next.toLowerCase()}`));
    if (order.status !== "CANCELED") actions.append(button(order, "CANCELED", "Cancel"));
  }

  function button(order, status, label) {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = label;
    element.dataset.to = status;
    element.setAttribute("aria-label", `${label}: order ${short(order.id)}`);
    return element;
  }

  function place(list, card, order) {
    const newer = [...list.children].find((other) => orders.get(other.dataset.orderId).created_at < order.created_at);
    list.insertBefore(card, newer || null);
  }

  function counts() {
    for (const status of STATUSES) {
      const list = document.querySelector(`ul[data-status="${status}"]`);
      document.querySelector(`[data-count="${status}"]`).textContent = String(list.children.length);
    }
  }

  function say(text) {
    $("announcer").textContent = text;
  }

  function connection(text, state) {
    const element = $("connection");
    element.textContent = text;
    element.dataset.state = state;
  }

  // --- changing orders --------------------------------------------------------------------
  async function create(event) {
    event.preventDefault();
    const form = event.target;
    $("create-error").textContent = "";
    $("create-button").disabled = true;
    try {
      const item = {
        name: form.name.value.trim(),
        price: form.price.value.trim(),
        quantity: Number(form.quantity.value),
      };
      const response = await api("/orders", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": randomKey() },
        body: JSON.stringify({ items: [item] }),
      });
      if (!response.ok) throw new Error(await problem(response));
      show(await response.json(), true);
    } catch (error) {
      $("create-error").textContent = error.message;
    } finally {
      $("create-button").disabled = false;
    }
  }

  async function change(event) {
    const target = event.target.closest("button[data-to]");
    if (!target) return;
    const card = target.closest(".card");
    const id = card.dataset.orderId;
    target.disabled = true;
    // A step forward is made only from the version on screen (If-Match); a cancel from
    // whatever step the order has reached meanwhile.
    const headers = { "Content-Type": "application/json" };
    if (target.dataset.to !== "CANCELED") headers["If-Match"] = `"${card.dataset.version}"`;
    const response = await api(`/orders/${id}/status`, {
      method: "PATCH",
      headers,
      body: JSON.stringify({ status: target.dataset.to }),
    });
    if (response.ok) {
      show(await response.json(), true);
    } else {
      target.disabled = false;
      say(`Order ${short(id)} was not changed: ${await problem(response)}`);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sign-in-form").addEventListener("submit", signIn);
    $("create-form").addEventListener("submit", create);
    $("board").addEventListener("click", change);
    $("sign-out").addEventListener("click", () => signOut());
    $("toggle-new").addEventListener("click", () => {
      const fields = $("new-account");
      fields.hidden = !fields.hidden;
      $("email").required = !fields.hidden;
      $("sign-in-button").textContent = fields.hidden ? "Sign in" : "Create account and sign in";
      $("toggle-new").textContent = fields.hidden ? "Create an account instead" : "I have an account";
    });
    $("username").focus();
  });
})();
