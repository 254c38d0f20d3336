// The reviewer page for localcloud's A2I human loops. Plain DOM, no build step, nothing loaded from elsewhere.
// The contract it speaks is documented in localcloud/src/localcloud/services/a2i_runtime/contract.py.
"use strict";

(function () {
  const app = document.getElementById("app");
  const reviewerInput = document.getElementById("reviewer");
  const toast = document.getElementById("toast");
  // What tests (and curious people) can read back: the page's progress, never its secrets (it has none).
  const status = (window.reviewState = {
    view: null, loaded: false, accepted: false, submitted: null, lastError: null, corrections: 0,
  });
  let refreshTimer = null;

  // -- helpers -------------------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    return data;
  }

  function say(message, kind) {
    toast.textContent = message;
    toast.className = `show ${kind || ""}`;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.className = ""; }, kind === "error" ? 9000 : 4000);
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  function band(confidence, threshold, near) {
    if (confidence < threshold) return "low";
    return confidence < threshold + near ? "near" : "ok";
  }

  function reviewer() {
    return reviewerInput.value.trim();
  }

  reviewerInput.value = localStorage.getItem("a2i-reviewer") || "";
  reviewerInput.addEventListener("change", () => {
    localStorage.setItem("a2i-reviewer", reviewer());
    if (status.view === "loop" && !status.accepted) route();
  });

  // -- the queue -----------------------------------------------------------------------------------------
  async function showList(all) {
    status.view = "list";
    status.loaded = false;
    const loops = (await api(`api/loops?status=${all ? "" : "InProgress"}`)).loops;
    const toggle = el("label", { class: "toggle" },
      el("input", { type: "checkbox", checked: all, onchange: (e) => showList(e.target.checked) }),
      " show finished loops too");
    const rows = loops.map((loop) => el("tr", {},
      el("td", {}, el("a", { href: `#/loop/${loop.region}/${loop.name}`, text: loop.name })),
      el("td", { text: loop.document.name || "—", title: loop.document.id || "" }),
      el("td", { text: loop.flowDefinitionName }),
      el("td", { text: when(loop.created) }),
      el("td", { class: "num", text: loop.tables }),
      el("td", {}, el("span", { class: `status ${loop.status}`, text: loop.status })),
      el("td", { class: "num", text: `${loop.answered}/${loop.taskCount}` })));
    app.replaceChildren(
      el("section", { class: "queue" },
        el("div", { class: "queue-head" },
          el("h2", { text: all ? "All human loops" : "Pending human loops" }), toggle,
          el("button", { type: "button", onclick: () => showList(all), text: "Refresh" })),
        loops.length
          ? el("table", { class: "loops" },
              el("thead", {}, el("tr", {}, ["Loop", "Document", "Flow definition", "Created", "Tables", "Status",
                "Answers"].map((h) => el("th", { scope: "col", text: h })))),
              el("tbody", {}, rows))
          : el("p", { class: "empty", text: "Nothing to review. New human loops appear here as they start." })));
    status.loaded = true;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => { if (status.view === "list") showList(all).catch(fail); }, 15000);
  }

  // -- one loop ------------------------------------------------------------------------------------------
  async function showLoop(region, name) {
    clearTimeout(refreshTimer);
    status.view = "loop";
    status.loaded = false;
    status.accepted = false;
    status.submitted = null;
    const loop = await api(`api/loops/${region}/${name}`);
    const base = `api/loops/${region}/${name}`;
    const open = loop.status === "InProgress" || loop.status === "Stopping";
    let acceptance = null;
    if (open && reviewer()) {
      try {
        acceptance = await api(`${base}/accept`, { reviewer: reviewer() });
        status.accepted = true;
      } catch (error) {
        say(error.message, "error");
      }
    }
    const editable = status.accepted;
    const head = el("section", { class: "loop-head" },
      el("h2", {}, loop.input.document && loop.input.document.name ? loop.input.document.name : loop.name),
      el("dl", { class: "facts" },
        fact("Loop", loop.name), fact("Status", el("span", { class: `status ${loop.status}`, text: loop.status })),
        fact("Flow definition", loop.flowDefinitionName), fact("Created", when(loop.created)),
        loop.input.document ? fact("Document", `${loop.input.document.id} · ${loop.input.document.source}`) : null,
        fact("Answers", `${loop.answered}/${loop.taskCount}`),
        loop.outputS3Uri ? fact("Output", loop.outputS3Uri) : null,
        loop.failureReason ? fact("Failure", loop.failureReason) : null),
      loop.taskDescription ? el("p", { class: "task", text: loop.taskDescription }) : null,
      !open ? el("p", { class: "note", text: `This loop is ${loop.status}; it takes no more answers.` }) : null,
      open && !reviewer()
        ? el("p", { class: "note", text: "Type your name in the Reviewer box (top right) to start reviewing." })
        : null,
      acceptance ? el("p", { class: "note", text: `Your task started ${when(acceptance.accepted)}.` }) : null);
    if (loop.problems.length) {
      app.replaceChildren(head, genericLoop(loop, base, editable));
    } else {
      app.replaceChildren(head, new TableReview(loop, base, editable).node);
    }
    if (open && !reviewer()) reviewerInput.focus();
    status.loaded = true;
  }

  function fact(label, value) {
    return [el("dt", { text: label }), el("dd", {}, value)];
  }

  // A loop whose input is not a table document: show it and take a JSON answer.
  function genericLoop(loop, base, editable) {
    const answer = el("textarea", { id: "raw-answer", rows: 10, spellcheck: "false",
      "aria-label": "Answer as JSON", disabled: !editable });
    answer.value = JSON.stringify({ reviewer: reviewer() }, null, 2);
    const submit = el("button", { type: "button", class: "primary", disabled: !editable, text: "Submit answer",
      onclick: async () => {
        let parsed;
        try { parsed = JSON.parse(answer.value); } catch (e) { say("The answer is not valid JSON.", "error"); return; }
        await send(base, parsed);
      } });
    return el("section", { class: "generic" },
      el("p", { class: "note", text: "This loop's input does not follow the table-review contract:" }),
      el("ul", {}, loop.problems.slice(0, 20).map((p) => el("li", { text: p }))),
      el("h3", { text: "Input" }), el("pre", { text: JSON.stringify(loop.input, null, 2) }),
      el("h3", {}, el("label", { for: "raw-answer", text: "Answer (JSON)" })), answer, submit);
  }

  async function send(base, answer) {
    try {
      const result = await api(`${base}/answer`, { answer });
      status.submitted = result;
      const done = result.outputS3Uri ? ` Output: ${result.outputS3Uri}` : "";
      say(`Submitted. The loop is ${result.status} (${result.answered}/${result.taskCount} answers).${done}`, "ok");
      location.hash = "#/";
    } catch (error) {
      status.lastError = error.message;
      say(error.message, "error");
    }
  }

  // -- the table editor ----------------------------------------------------------------------------------
  class TableReview {
    constructor(loop, base, editable) {
      this.loop = loop;
      this.base = base;
      this.editable = editable;
      this.input = loop.input;
      this.threshold = Number(this.input.threshold);
      this.near = loop.bands.near;
      this.tables = [];  // per table: {source, type, headers: [input], cells: [[input]]}
      this.boxes = new Map();  // "t:r:c" -> overlay box
      this.pageNodes = new Map();
      const pages = this.renderPages();
      const editor = el("div", { class: "editor" }, this.legend(), this.input.tables.map((t, i) => this.renderTable(t, i)));
      this.count = el("span", { class: "count", text: "No corrections yet" });
      this.submitButton = el("button", { type: "button", class: "primary", disabled: !editable,
        text: "Submit review", title: "Ctrl+Enter", onclick: () => this.submit() });
      const bar = el("div", { class: "submit-bar" }, this.count,
        el("span", { class: "keys", text: "Tab: next cell · Enter/Shift+Enter: down/up · Esc: undo cell · Ctrl+Enter: submit" }),
        this.submitButton);
      this.node = el("div", { class: "review" }, el("div", { class: "workspace" }, pages, editor), bar);
      this.node.addEventListener("keydown", (event) => this.onKey(event));
      // The delegated input handler below finds the editor through its node.
      this.node.review = this;
      this.updateCount();
    }

    legend() {
      const t = this.threshold;
      return el("p", { class: "legend" },
        el("span", { class: "swatch low" }), ` below ${t} `,
        el("span", { class: "swatch near" }), ` ${t}–${t + this.near} `,
        el("span", { class: "swatch ok" }), ` ${t + this.near} and up `,
        el("span", { class: "swatch flagged" }), " flagged by a rule (reasons on hover and in each table's list)");
    }

    renderPages() {
      const column = el("div", { class: "pages" });
      for (const page of this.loop.pages) {
        const frame = el("div", { class: "frame" });
        const img = el("img", { src: page.url, alt: `Page ${page.page}`, width: page.width, height: page.height });
        img.addEventListener("error", () => frame.classList.add("missing"));
        frame.append(img);
        const node = el("figure", { class: "page" }, frame, el("figcaption", { text: `Page ${page.page}` }));
        this.pageNodes.set(page.page, frame);
        column.append(node);
      }
      return column;
    }

    renderTable(table, ti) {
      const key = (r, c) => `${ti}:${r}:${c}`;
      const select = el("select", { "aria-label": `Type of table ${table.table_id}`, disabled: !this.editable },
        this.loop.tableTypes.map((type) => el("option", { value: type, text: type, selected: type === table.table_type })));
      select.addEventListener("change", () => {
        select.classList.toggle("edited", select.value !== table.table_type);
        this.updateCount();
      });
      const headers = table.headers.map((text, c) => {
        const input = el("input", { type: "text", class: "header", "aria-label": `Table ${table.table_id}, header ${c + 1}`,
          "data-row": -1, "data-col": c, "data-table": ti, readonly: !this.editable });
        input.value = text;
        input.dataset.original = text;
        return input;
      });
      const flagged = [];
      const cells = table.rows.map((row, r) => row.map((cell, c) => {
        const level = band(cell.confidence, this.threshold, this.near);
        const flags = cell.flags || [];
        const column = table.headers[c] || `column ${c + 1}`;
        const tip = `${column}: confidence ${cell.confidence.toFixed(1)}` + (flags.length ? ` · ${flags.join("; ")}` : "");
        const input = el("input", { type: "text", class: `cell ${level}${flags.length ? " flagged" : ""}`,
          "aria-label": `Table ${table.table_id}, row ${r + 1}, ${column}`, title: tip,
          "data-row": r, "data-col": c, "data-table": ti, readonly: !this.editable });
        input.value = cell.text;
        input.dataset.original = cell.text;
        input.addEventListener("focus", () => this.highlight(key(r, c), true));
        input.addEventListener("blur", () => this.highlight(key(r, c), false));
        if (flags.length) flagged.push({ r, c, column, flags, input });
        if (cell.bbox) this.addBox(table.page, key(r, c), cell, level, flags, tip, input);
        return input;
      }));
      this.tables.push({ source: table, type: select, headers, cells });
      const list = flagged.length
        ? el("details", { class: "flags", open: true },
            el("summary", { text: `${flagged.length} flagged cell${flagged.length > 1 ? "s" : ""}` }),
            el("ul", {}, flagged.map((f) => el("li", {},
              el("button", { type: "button", class: "link", onclick: () => f.input.focus(),
                text: `row ${f.r + 1}, ${f.column}` }),
              `: ${f.flags.join("; ")}`))))
        : null;
      const grid = el("table", { class: "grid" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "rownum", text: "#" }),
          headers.map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, cells.map((row, r) => el("tr", {},
          el("th", { scope: "row", class: "rownum", text: r + 1 }), row.map((input) => el("td", {}, input))))));
      const lows = table.rows.flat().filter((cell) => cell.confidence < this.threshold).length;
      return el("section", { class: "table-card", id: `table-${ti}` },
        el("div", { class: "table-head" },
          el("h3", { text: `Table ${table.table_id}` }),
          el("span", { class: "meta", text: `page ${table.page} · ${table.rows.length} rows · ${lows} below threshold` }),
          el("label", { class: "type" }, "Type ", select)),
        list, el("div", { class: "grid-wrap" }, grid));
    }

    addBox(page, key, cell, level, flags, tip, input) {
      const frame = this.pageNodes.get(page);
      if (!frame) return;
      const box = el("div", { class: `box ${level}${flags.length ? " flagged" : ""}`, title: `${tip}\n“${cell.text}”` });
      box.style.left = `${cell.bbox.Left * 100}%`;
      box.style.top = `${cell.bbox.Top * 100}%`;
      box.style.width = `${cell.bbox.Width * 100}%`;
      box.style.height = `${cell.bbox.Height * 100}%`;
      box.addEventListener("click", () => input.focus());
      frame.append(box);
      this.boxes.set(key, box);
    }

    highlight(key, on) {
      const box = this.boxes.get(key);
      if (!box) return;
      box.classList.toggle("focus", on);
      if (on) box.scrollIntoView({ block: "nearest", inline: "nearest" });
    }

    onKey(event) {
      const target = event.target;
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.submit();
        return;
      }
      if (!(target instanceof HTMLInputElement) || !target.dataset.table) return;
      if (event.key === "Escape") {
        target.value = target.dataset.original;
        this.changed(target);
        return;
      }
      if (event.key === "Enter") {
        event.preventDefault();
        const t = this.tables[Number(target.dataset.table)];
        const r = Number(target.dataset.row) + (event.shiftKey ? -1 : 1);
        const c = Number(target.dataset.col);
        const next = r < 0 ? t.headers[c] : t.cells[r] && t.cells[r][c];
        if (next) next.focus();
      }
    }

    changed(input) {
      input.classList.toggle("edited", input.value !== input.dataset.original);
      const box = this.boxes.get(`${input.dataset.table}:${input.dataset.row}:${input.dataset.col}`);
      if (box) box.classList.toggle("edited", input.value !== input.dataset.original);
      this.updateCount();
    }

    answer() {
      const tables = [];
      const corrections = [];
      for (const t of this.tables) {
        const id = t.source.table_id;
        const headers = t.headers.map((input) => input.value);
        const rows = t.cells.map((row) => row.map((input) => input.value));
        headers.forEach((value, col) => {
          if (value !== t.source.headers[col]) {
            corrections.push({ table_id: id, row: -1, col, old: t.source.headers[col], new: value });
          }
        });
        rows.forEach((row, r) => row.forEach((value, col) => {
          const old = t.source.rows[r][col].text;
          if (value !== old) corrections.push({ table_id: id, row: r, col, old, new: value });
        }));
        tables.push({ table_id: id, table_type: t.type.value, headers, rows });
      }
      return { tables, corrections, reviewer: reviewer() };
    }

    updateCount() {
      const answer = this.answer();
      const retyped = this.tables.filter((t) => t.type.value !== t.source.table_type).length;
      const n = answer.corrections.length;
      status.corrections = n;
      this.count.textContent = (n ? `${n} correction${n > 1 ? "s" : ""}` : "No corrections yet")
        + (retyped ? ` · ${retyped} table type${retyped > 1 ? "s" : ""} changed` : "");
    }

    async submit() {
      if (!this.editable || this.submitButton.disabled) return;
      if (!reviewer()) {
        say("Type your name in the Reviewer box first.", "error");
        reviewerInput.focus();
        return;
      }
      this.submitButton.disabled = true;
      await send(this.base, this.answer());
      if (!status.submitted) this.submitButton.disabled = false;
    }
  }

  // Edits anywhere in the editor update marks and the count.
  app.addEventListener("input", (event) => {
    const view = event.target.closest(".review");
    if (view && event.target.dataset.table !== undefined && view.review) view.review.changed(event.target);
  });

  // -- routing -------------------------------------------------------------------------------------------
  function fail(error) {
    status.lastError = error.message;
    app.replaceChildren(el("p", { class: "note error", text: error.message }),
      el("p", {}, el("a", { href: "#/", text: "Back to the queue" })));
  }

  function route() {
    const match = location.hash.match(/^#\/loop\/([a-z0-9-]+)\/([a-z0-9-]+)$/);
    const done = match ? showLoop(match[1], match[2]) : showList(false);
    done.catch(fail);
  }

  window.addEventListener("hashchange", route);
  route();
})();
