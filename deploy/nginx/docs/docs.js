// The gateway's docs page: every service's public OpenAPI document, fetched from the gateway
// (/openapi/<service>.json) and merged into one, so the whole public API is on one page with
// one "Authorize" (the OAuth2 password login against /auth/token). Schemas two services name
// alike but shape differently are kept apart as "<service>.<name>".
"use strict";

function refsRenamed(node, renames) {
  if (Array.isArray(node)) return node.map((item) => refsRenamed(item, renames));
  if (node === null || typeof node !== "object") return node;
  const copy = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$ref" && typeof value === "string" && value in renames) copy[key] = renames[value];
    else copy[key] = refsRenamed(value, renames);
  }
  return copy;
}

function merge(documents) {
  const merged = {
    openapi: documents[0].document.openapi,
    info: {
      title: "Orders platform",
      version: documents[0].document.info.version,
      description: "Every service's public API, through the gateway. Authorize with your " +
        "username and password (OAuth2 password flow), then try any route.",
    },
    paths: {},
    components: { schemas: {}, securitySchemes: {} },
  };
  for (const { name, document } of documents) {
    const components = document.components || {};
    const schemas = components.schemas || {};
    const renames = {};
    for (const [schema, body] of Object.entries(schemas)) {
      const taken = merged.components.schemas[schema];
      if (taken !== undefined && JSON.stringify(taken) !== JSON.stringify(body)) {
        renames[`#/components/schemas/${schema}`] = `#/components/schemas/${name}.${schema}`;
      }
    }
    const renamed = refsRenamed(document, renames);
    for (const [schema, body] of Object.entries((renamed.components || {}).schemas || {})) {
      const key = `#/components/schemas/${schema}` in renames ? `${name}.${schema}` : schema;
      merged.components.schemas[key] = body;
    }
    Object.assign(merged.components.securitySchemes, (renamed.components || {}).securitySchemes);
    for (const [path, operations] of Object.entries(renamed.paths || {})) {
      merged.paths[path] = { ...(merged.paths[path] || {}), ...operations };
    }
  }
  return merged;
}

function note(text) {
  const line = document.createElement("p");
  line.className = "docs-error";
  line.textContent = text;
  document.body.prepend(line);
}

async function fetchDocument({ name, url }) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error(`${name}'s API (${url}) answered ${answer.status}`);
  return { name, document: await answer.json() };
}

async function load() {
  const services = JSON.parse(document.getElementById("openapi-documents").textContent);
  const outcomes = await Promise.allSettled(services.map(fetchDocument));
  const documents = outcomes.filter((o) => o.status === "fulfilled").map((o) => o.value);
  for (const failed of outcomes.filter((o) => o.status === "rejected")) {
    note(`Not shown: ${failed.reason.message}`);
  }
  if (documents.length === 0) return;
  window.ui = SwaggerUIBundle({
    spec: merge(documents),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false, // a token lives in this page only, never in localStorage
    tryItOutEnabled: true,
  });
}

load().catch((error) => note(`The API documents could not be shown: ${error.message}`));
