// The etiquette dashboard's page. It reads the board from `api/stream`
// (Server-Sent Events: a `snapshot` first, then `events` and `stats` as
// they come) and keeps its own copy up to date, as the server keeps its
// board. Every text the server sends is set as text, never as HTML.
'use strict';

(() => {
  // Every request goes where this script came from, below the mount point,
  // wherever the application put it (the page may be at `/etiquette` or at
  // `/etiquette/`).
  const base = new URL('.', document.currentScript.src).pathname;
  const api = (path) => base + 'api/' + path;
  const $ = (id) => document.getElementById(id);
  const RECENT = 50;
  // The server sends the counters every second: this long without a word
  // means the connection died without telling.
  const SILENCE_MS = 10000;

  const model = {
    options: { cancel: false, retry: false, errors: true, messages: true },
    queue: { max_concurrent_tasks: 0, queue_capacity: 0, released: false },
    closed: false,
    stats: null,
    rows: [],
    intervalMs: 1000,
    running: new Map(),
    retrying: new Map(),
    failures: [],
    ended: [],
    missed: 0,
  };
  // The task whose page is open: { id, job, retriable, status, events,
  // omitted, loaded }.
  let task = null;
  // The tasks whose retry was sent and not yet answered. Kept apart from
  // the buttons, which a re-render replaces: a click on a new button
  // during a retry in flight must not send a second one.
  const retriesInFlight = new Set();

  // ---- small helpers -------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  const number = (value) => (value === undefined || value === null ? '–' : Number(value).toLocaleString());

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const h = Math.floor(m / 60);
    return `${h} h ${m % 60} min`;
  }

  const clock = (ms) => new Date(ms).toLocaleTimeString();
  const ago = (ms) => `${duration(Date.now() - ms)} ago`;

  function time(ms) {
    return el('time', { datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString(), text: clock(ms) });
  }

  function taskLink(id) {
    return el('a', { href: `#/tasks/${id}`, text: `#${id}`, 'aria-label': `Task ${id}` });
  }

  // A typed job's name (its kind), shown beside its task's id; none for a
  // closure task, or a job the server never heard named.
  const jobName = (job) => el('span', { class: 'job', text: job || '' });

  const OUTCOME_NAMES = {
    queued: 'queued', scheduled: 'scheduled', running: 'running', started: 'started',
    progress: 'progress', retrying: 'retrying', succeeded: 'succeeded', failed: 'failed',
    timed_out: 'timed out', cancelled: 'cancelled',
  };
  const FINISHED = ['succeeded', 'failed', 'timed_out', 'cancelled'];
  const badge = (name) => el('span', { class: `badge ${name}`, text: OUTCOME_NAMES[name] || name });

  function errorText(item) {
    if (item.error !== undefined) return item.error;
    if (item.error_hidden) return 'The error text is hidden on this dashboard.';
    return null;
  }

  function percent(fraction) {
    return fraction === null || fraction === undefined ? null : Math.round(fraction * 100);
  }

  // ---- notices -------------------------------------------------------

  let noticeTimer = null;
  function notice(text, bad) {
    const node = $('notice');
    node.textContent = text;
    node.classList.toggle('bad', Boolean(bad));
    node.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { node.hidden = true; }, 8000);
  }

  // ---- the model -----------------------------------------------------

  function pushRecent(list, item) {
    list.unshift(item);
    if (list.length > RECENT) list.length = RECENT;
  }

  function applySnapshot(snapshot) {
    model.options = snapshot.options;
    model.queue = snapshot.queue;
    model.closed = snapshot.closed;
    model.stats = snapshot.stats;
    model.stored = snapshot.stored;
    model.intervalMs = snapshot.history.interval_ms;
    model.rows = snapshot.history.rows;
    model.running = new Map(snapshot.running.map((item) => [item.id, item]));
    model.retrying = new Map(snapshot.retrying.map((item) => [item.id, item]));
    model.failures = snapshot.failures;
    model.ended = snapshot.ended;
    model.missed = snapshot.missed;
  }

  // The same steps as the server's board (board.rs).
  function applyEvent(event) {
    const id = event.task;
    if (!FINISHED.includes(event.event) && event.event !== 'progress') {
      // Back in line or running again (retried by hand): no longer a
      // failure to act on.
      model.failures = model.failures.filter((failure) => failure.task !== id);
    }
    switch (event.event) {
      case 'queued':
      case 'scheduled':
        break;
      case 'started':
        model.retrying.delete(id);
        model.running.set(id, { id, job: event.job, attempt: event.attempt, started_ms: event.at_ms, fraction: null, message: null });
        break;
      case 'progress': {
        let running = model.running.get(id);
        if (!running) {
          running = { id, job: event.job, attempt: 0, started_ms: event.at_ms, fraction: null, message: null };
          model.running.set(id, running);
        }
        if (event.fraction !== undefined) running.fraction = event.fraction;
        if (event.message !== undefined) running.message = event.message;
        if (event.message_hidden) running.message_hidden = true;
        break;
      }
      case 'retrying':
        model.running.delete(id);
        model.retrying.set(id, {
          id, job: event.job, attempt: event.attempt, backoff_ms: event.backoff_ms, at_ms: event.at_ms,
          error: event.error, error_hidden: event.error_hidden,
        });
        break;
      default:
        model.running.delete(id);
        model.retrying.delete(id);
        if (event.event === 'failed' || event.event === 'timed_out') pushRecent(model.failures, event);
        pushRecent(model.ended, event);
    }
    if (task && task.id === id) taskEvent(event);
  }

  function applySample(sample) {
    model.stats = sample.stats;
    model.queue.released = sample.released;
    // Counters sent between samples have no row for the chart.
    if (!sample.row) return;
    model.rows.push(sample.row);
    const keep = Math.round(300000 / model.intervalMs);
    if (model.rows.length > keep) model.rows.splice(0, model.rows.length - keep);
  }

  // ---- rendering: counters and chart ---------------------------------

  // Rates per second between consecutive samples, for column `column`.
  function rates(column) {
    const out = [];
    for (let i = 1; i < model.rows.length; i++) {
      const [t0] = model.rows[i - 1];
      const [t1] = model.rows[i];
      const seconds = Math.max((t1 - t0) / 1000, 0.001);
      out.push([t1, Math.max(0, (model.rows[i][column] - model.rows[i - 1][column]) / seconds)]);
    }
    return out;
  }

  function formatRate(rate) {
    if (rate === undefined) return '–';
    return rate >= 10 ? Math.round(rate).toLocaleString() : (Math.round(rate * 10) / 10).toLocaleString();
  }

  function renderStats() {
    const stats = model.stats;
    if (!stats) return;
    $('stat-running').textContent = number(stats.running);
    $('stat-slots').textContent = `of ${number(model.queue.max_concurrent_tasks)} slots`;
    $('stat-queued').textContent = number(stats.queued);
    $('stat-capacity').textContent = `room for ${number(model.queue.queue_capacity)}`;
    $('stat-scheduled').textContent = number(stats.scheduled);
    $('stat-retrying').textContent = number(stats.retrying);
    $('stat-retried').textContent = `${number(stats.retried)} retries so far`;
    $('stat-completed').textContent = number(stats.completed);
    $('stat-failed').textContent = number(stats.failed);
    const detail = [];
    if (stats.timed_out) detail.push(`${number(stats.timed_out)} timed out`);
    if (stats.panicked) detail.push(`${number(stats.panicked)} panicked`);
    $('stat-failed-detail').textContent = detail.join(', ');
    $('stat-cancelled').textContent = number(stats.cancelled);
    $('stat-handed-back').textContent = stats.handed_back ? `${number(stats.handed_back)} handed back` : '';
    $('stat-accepted').textContent = number(stats.accepted);
    const completed = rates(2);
    const accepted = rates(1);
    const last = (series) => (series.length ? series[series.length - 1][1] : undefined);
    $('rate-completed').textContent = completed.length ? `${formatRate(last(completed))}/s now` : '';
    $('rate-accepted').textContent = accepted.length ? `${formatRate(last(accepted))}/s now` : '';
    renderChart(completed, rates(3), accepted);
    const banner = $('banner');
    if (model.queue.released) {
      banner.textContent = 'The queue is shutting down: it accepts no new tasks and finishes those it has.';
      banner.hidden = false;
    } else if (model.missed) {
      banner.textContent = `The dashboard fell behind the queue and missed ${number(model.missed)} events; the tasks it shows were checked against the queue.`;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  function niceMax(value) {
    if (value <= 1) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  function renderChart(completed, failed, accepted) {
    const chart = $('chart');
    const [width, height] = [600, 150];
    const now = model.rows.length ? model.rows[model.rows.length - 1][0] : Date.now();
    const span = 300000;
    const x = (t) => ((t - (now - span)) / span) * width;
    const peak = Math.max(0, ...completed.map((p) => p[1]), ...failed.map((p) => p[1]), ...accepted.map((p) => p[1]));
    const top = niceMax(peak);
    const y = (rate) => height - (rate / top) * (height - 4) - 1;
    const path = (series) => series.map(([t, rate], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(rate).toFixed(1)}`).join('');
    const nodes = [];
    for (const fraction of [0.5, 1]) {
      const at = y(top * fraction).toFixed(1);
      nodes.push(svg('line', { class: 'grid', x1: 0, x2: width, y1: at, y2: at }));
    }
    if (completed.length > 1) {
      const first = x(completed[0][0]).toFixed(1);
      const lastX = x(completed[completed.length - 1][0]).toFixed(1);
      nodes.push(svg('path', { class: 'area', d: `${path(completed)}L${lastX},${height}L${first},${height}Z` }));
    }
    nodes.push(svg('path', { class: 'line accepted', d: path(accepted) }));
    nodes.push(svg('path', { class: 'line completed', d: path(completed) }));
    nodes.push(svg('path', { class: 'line failed', d: path(failed) }));
    chart.replaceChildren(...nodes);
    $('chart-max').textContent = `${formatRate(top)}/s`;
    const lastRate = (series) => (series.length ? formatRate(series[series.length - 1][1]) : '0');
    $('chart-caption').textContent = completed.length
      ? `Now ${lastRate(completed)} completed, ${lastRate(failed)} failed and ${lastRate(accepted)} accepted per second; the peak over the last 5 minutes was ${formatRate(peak)} per second.`
      : 'Waiting for the first samples…';
  }

  // ---- rendering: tasks ----------------------------------------------

  function cancelButton(id) {
    if (!model.options.cancel) return null;
    const button = el('button', { type: 'button', class: 'danger small', 'data-cancel': id, text: 'Cancel', 'aria-label': `Cancel task ${id}` });
    button.addEventListener('click', () => cancel(id, button));
    return button;
  }

  // Only on an end the server says the task may be retried from
  // (`retriable`: a typed job's failure, never a closure task's); disabled
  // while a retry of it is in flight.
  function retryButton(event) {
    if (!model.options.retry || !event.retriable) return null;
    const id = event.task;
    const button = el('button', {
      type: 'button', class: 'small', 'data-retry': id, text: 'Retry', 'aria-label': `Retry task ${id}`,
      disabled: retriesInFlight.has(id),
    });
    button.addEventListener('click', () => retry(id));
    return button;
  }

  // Brings `tbody`'s rows in line with `items` (in order), keeping the rows
  // of items still there, so that focus and buttons survive updates.
  function syncRows(container, items, make, update) {
    const existing = new Map([...container.children].map((row) => [row.dataset.task, row]));
    let previous = null;
    for (const item of items) {
      const key = String(item.id);
      let row = existing.get(key);
      if (row) existing.delete(key);
      else row = make(item);
      update(row, item);
      const next = previous ? previous.nextSibling : container.firstChild;
      if (row !== next) container.insertBefore(row, next);
      previous = row;
    }
    for (const row of existing.values()) row.remove();
  }

  function renderRunning() {
    const items = [...model.running.values()].sort((a, b) => a.id - b.id);
    syncRows($('running'), items, (item) => {
      const bar = el('progress', { max: 100, 'aria-label': `Progress of task ${item.id}` });
      return el('tr', { 'data-task': item.id },
        el('td', {}, taskLink(item.id), ' ', jobName()),
        el('td', { class: 'narrow-hide attempt' }),
        el('td', {}, el('div', { class: 'progress-cell' }, bar, el('span', { class: 'percent' }), el('span', { class: 'message' }))),
        el('td', { class: 'elapsed' }),
        el('td', { class: 'actions' }, cancelButton(item.id)));
    }, (row, item) => {
      row.querySelector('.job').textContent = item.job || '';
      row.querySelector('.attempt').textContent = item.attempt ? String(item.attempt) : '–';
      const bar = row.querySelector('progress');
      const value = percent(item.fraction);
      if (value === null) bar.removeAttribute('value');
      else bar.value = value;
      row.querySelector('.percent').textContent = value === null ? '' : `${value} %`;
      row.querySelector('.message').textContent = item.message_hidden ? '' : (item.message || '');
      row.querySelector('.elapsed').textContent = duration(Date.now() - item.started_ms);
    });
    $('running-count').textContent = String(items.length);
    $('running-empty').hidden = items.length > 0;
  }

  function renderRetrying() {
    const items = [...model.retrying.values()].sort((a, b) => a.id - b.id);
    syncRows($('retrying'), items, (item) => el('li', { 'data-task': item.id },
      el('div', { class: 'item-head' },
        el('span', {}, taskLink(item.id), ' ', jobName(), ' ', el('span', { class: 'meta' })),
        cancelButton(item.id)),
      el('pre', { class: 'error' })), (row, item) => {
      row.querySelector('.job').textContent = item.job || '';
      const due = item.at_ms + item.backoff_ms - Date.now();
      row.querySelector('.meta').textContent = `attempt ${item.attempt} failed; ${due > 0 ? `next in ${duration(due)}` : 'next attempt due'}`;
      const text = errorText(item);
      const pre = row.querySelector('pre');
      pre.textContent = text || '';
      pre.hidden = text === null;
    });
    $('retrying-count').textContent = String(items.length);
    $('retrying-empty').hidden = items.length > 0;
  }

  function renderFailures() {
    const list = $('failures');
    list.replaceChildren(...model.failures.map((event) => {
      const text = errorText(event) || (event.event === 'timed_out' ? 'The last attempt ran past its time limit.' : '');
      return el('li', { 'data-task': event.task },
        el('div', { class: 'item-head' },
          el('span', {}, taskLink(event.task), ' ', jobName(event.job), ' ', badge(event.event)),
          el('span', { class: 'meta' }, `after ${event.attempts} attempt${event.attempts === 1 ? '' : 's'}, `, time(event.at_ms)),
          retryButton(event)),
        text ? el('pre', { class: 'error', text }) : null);
    }));
    $('failures-empty').hidden = model.failures.length > 0;
  }

  function renderEnded() {
    const body = $('ended');
    body.replaceChildren(...model.ended.map((event) => el('tr', { 'data-task': event.task },
      el('td', {}, taskLink(event.task), ' ', jobName(event.job)),
      el('td', {}, badge(event.event)),
      el('td', { class: 'narrow-hide', text: event.attempts === undefined ? '–' : String(event.attempts) }),
      el('td', {}, time(event.at_ms)))));
    $('ended-empty').hidden = model.ended.length > 0;
  }

  // The jobs a durable backend stores, across every process; counted up
  // to a cap, shown as "10,000+" there. Hidden on the in-memory queue.
  function renderStored() {
    const stored = model.stored;
    $('stored').hidden = !stored;
    if (!stored) return;
    const count = (n) => (n >= stored.cap ? `${number(stored.cap)}+` : number(n));
    $('stored-queued').textContent = count(stored.queued);
    $('stored-scheduled').textContent = count(stored.scheduled);
    $('stored-running').textContent = count(stored.running);
    $('stored-retrying').textContent = count(stored.retrying);
  }

  function renderOverview() {
    renderStats();
    renderStored();
    renderRunning();
    renderRetrying();
    renderFailures();
    renderEnded();
    const actions = [];
    if (model.options.cancel) actions.push('Cancelling');
    if (model.options.retry) actions.push('retrying');
    const mode = [actions.length
      ? `${actions.join(' and ').replace(/^./, (c) => c.toUpperCase())} tasks ${actions.length > 1 ? 'are' : 'is'} allowed.`
      : 'Read-only.'];
    if (!model.options.errors) mode.push('Error texts are hidden.');
    if (!model.options.messages) mode.push('Progress messages are hidden.');
    $('mode').textContent = mode.join(' ');
  }

  // ---- a task's page -------------------------------------------------

  // `afterEnd`: the task had ended before this event (it was retried by
  // hand).
  function describe(event, afterEnd) {
    switch (event.event) {
      case 'queued': return afterEnd ? 'Retried by hand: back in line.' : 'Accepted into the queue.';
      case 'scheduled': return `Scheduled to start at ${new Date(event.run_at_ms).toLocaleString()}.`;
      case 'started': return `Attempt ${event.attempt} started.`;
      case 'progress': {
        const parts = [];
        const value = percent(event.fraction);
        if (value !== null) parts.push(`${value} %`);
        if (event.message) parts.push(event.message);
        return `Progress: ${parts.join(' · ') || 'reported'}.`;
      }
      case 'retrying': return `Attempt ${event.attempt} failed; the next starts after ${duration(event.backoff_ms)}.`;
      case 'succeeded': return `Succeeded after ${event.attempts} attempt${event.attempts === 1 ? '' : 's'}.`;
      case 'failed': return `Failed after ${event.attempts} attempt${event.attempts === 1 ? '' : 's'}.`;
      case 'timed_out': return `Timed out on attempt ${event.attempts}.`;
      case 'cancelled': return 'Cancelled.';
      default: return event.event;
    }
  }

  function eventItem(event, afterEnd) {
    const text = event.event === 'retrying' || event.event === 'failed' ? errorText(event) : null;
    return el('li', { 'data-event': event.event },
      time(event.at_ms),
      el('div', { class: 'what' }, badge(event.event), ' ', describe(event, afterEnd),
        text ? el('pre', { class: 'error', text }) : null));
  }

  // The status a task's event leaves it in, for its page.
  function statusAfter(event, status) {
    switch (event.event) {
      case 'queued': return { status: 'queued' };
      case 'scheduled': return { status: 'scheduled', run_at_ms: event.run_at_ms };
      case 'started': return { status: 'running', attempt: event.attempt };
      case 'progress': return status && status.status === 'running' ? status : { status: 'running', attempt: 0 };
      case 'retrying': return { status: 'retrying', attempt: event.attempt, backoff_ms: event.backoff_ms, error: event.error, error_hidden: event.error_hidden };
      default: return { status: event.event, attempts: event.attempts, error: event.error, error_hidden: event.error_hidden };
    }
  }

  function taskEvent(event) {
    if (!task.loaded) {
      task.pending.push(event);
      return;
    }
    const afterEnd = task.events.some((old) => FINISHED.includes(old.event));
    task.events.push(event);
    task.status = statusAfter(event, task.status);
    if (event.job) task.job = event.job;
    // Retriable from its end only; back in line, no more.
    task.retriable = Boolean(event.retriable);
    $('task-events').append(eventItem(event, afterEnd));
    $('task-events-empty').hidden = true;
    renderTask();
  }

  async function loadTask(id) {
    task = { id, job: null, retriable: false, loaded: false, pending: [], events: [], status: null };
    $('task-id').textContent = `#${id}`;
    $('task-job').textContent = '';
    document.title = `Task ${id} · etiquette`;
    $('task-missing').hidden = true;
    $('task-facts').hidden = false;
    $('task-events').replaceChildren();
    let response;
    try {
      response = await fetch(api(`tasks/${id}`), { headers: { accept: 'application/json' } });
    } catch (error) {
      if (task && task.id === id) showMissing(`Task ${id} could not be loaded: the server could not be reached.`);
      return;
    }
    if (!task || task.id !== id) return;
    if (!response.ok) {
      const reason = response.status === 404
        ? `No task ${id} is known: it never existed, or finished too long ago to be remembered.`
        : `Task ${id} could not be loaded (${response.status}): ${await response.text()}`;
      showMissing(reason);
      return;
    }
    const body = await response.json();
    if (!task || task.id !== id) return;
    const newest = body.events.reduce((max, event) => Math.max(max, event.id), 0);
    task.status = body.status;
    task.job = body.job;
    task.retriable = body.retriable;
    task.events = body.events;
    task.omitted = body.omitted;
    task.loaded = true;
    $('task-events').replaceChildren(...task.events.map((event, index) =>
      eventItem(event, task.events.slice(0, index).some((old) => FINISHED.includes(old.event)))));
    for (const event of task.pending) {
      if (event.id > newest) taskEvent(event);
    }
    task.pending = [];
    renderTask();
  }

  function showMissing(text) {
    $('task-missing').textContent = text;
    $('task-missing').hidden = false;
    $('task-facts').hidden = true;
    $('task-cancel').hidden = true;
    $('task-retry').hidden = true;
    $('task-error-row').hidden = true;
    $('task-events-empty').hidden = true;
  }

  function renderTask() {
    if (!task || !task.loaded) return;
    const status = task.status;
    const name = status ? status.status : 'unknown';
    $('task-job').textContent = task.job || '';
    const statusNode = $('task-status');
    statusNode.className = `badge ${name}`;
    statusNode.textContent = status ? (OUTCOME_NAMES[name] || name) : 'no longer known to the queue';
    const attempts = status ? (status.attempts ?? status.attempt) : undefined;
    $('task-attempts').textContent = attempts ? String(attempts) : '–';
    const running = model.running.get(task.id);
    const showProgress = name === 'running' && running !== undefined;
    $('task-progress-row').hidden = !showProgress;
    if (showProgress) {
      const value = percent(running.fraction);
      const bar = $('task-bar');
      if (value === null) bar.removeAttribute('value');
      else bar.value = value;
      $('task-percent').textContent = value === null ? '' : `${value} %`;
      $('task-message').textContent = running.message || '';
    }
    const error = status ? errorText(status) : null;
    $('task-error-row').hidden = error === null;
    $('task-error').textContent = error || '';
    $('task-cancel').hidden = !model.options.cancel || !status || FINISHED.includes(name);
    $('task-retry').hidden = !model.options.retry || !task.retriable;
    $('task-retry').disabled = retriesInFlight.has(task.id);
    $('task-events-empty').hidden = task.events.length > 0;
    const omitted = $('task-omitted');
    omitted.hidden = !task.omitted;
    omitted.textContent = task.omitted ? `${number(task.omitted)} earlier events are not kept; the oldest shown first.` : '';
  }

  // ---- actions -------------------------------------------------------

  async function cancel(id, button) {
    button.disabled = true;
    try {
      const response = await fetch(api(`tasks/${id}/cancel`), {
        method: 'POST',
        headers: { 'x-etiquette-dashboard': 'cancel' },
      });
      if (response.ok) notice(`Task ${id} was cancelled.`);
      else notice(`Task ${id} was not cancelled: ${await response.text()}`, true);
    } catch (error) {
      notice(`Task ${id} was not cancelled: the server could not be reached.`, true);
    } finally {
      button.disabled = false;
    }
  }

  // The Retry buttons of task `id` drawn now, disabled while its retry is
  // in flight (those drawn later are made so by `retryButton` and
  // `renderTask`).
  function markRetrying(id) {
    const busy = retriesInFlight.has(id);
    for (const button of document.querySelectorAll(`[data-retry="${id}"]`)) button.disabled = busy;
    if (task && task.id === id) $('task-retry').disabled = busy;
  }

  // One retry of a task at a time: its buttons stay disabled, through
  // every re-render, until the answer came.
  async function retry(id) {
    if (retriesInFlight.has(id)) return;
    retriesInFlight.add(id);
    markRetrying(id);
    try {
      const response = await fetch(api(`tasks/${id}/retry`), {
        method: 'POST',
        headers: { 'x-etiquette-dashboard': 'retry' },
      });
      if (response.ok) notice(`Task ${id} is back in line.`);
      else notice(`Task ${id} was not retried: ${await response.text()}`, true);
    } catch (error) {
      notice(`Task ${id} was not retried: the server could not be reached.`, true);
    } finally {
      retriesInFlight.delete(id);
      markRetrying(id);
    }
  }

  // ---- views ---------------------------------------------------------

  function route() {
    const match = /^#\/tasks\/(\d+)$/.exec(location.hash);
    const onTask = match !== null;
    $('overview').hidden = onTask;
    $('task-view').hidden = !onTask;
    if (onTask) {
      loadTask(Number(match[1]));
    } else {
      task = null;
      document.title = 'Queue dashboard · etiquette';
    }
  }

  // ---- the live connection -------------------------------------------

  let source = null;
  let retryTimer = null;
  let retryDelay = 1000;
  let lastHeard = 0;
  let connected = false;

  function setConnection(state, text) {
    const node = $('connection');
    if (node.dataset.state !== state || $('connection-text').textContent !== text) {
      node.dataset.state = state;
      $('connection-text').textContent = text;
    }
    $('reconnect').hidden = state !== 'disconnected';
    $('main').classList.toggle('stale', state !== 'live');
  }

  function heard() {
    lastHeard = Date.now();
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    setConnection(connected ? 'reconnecting' : 'connecting', connected ? 'Reconnecting…' : 'Connecting…');
    const stream = new EventSource(api('stream'));
    source = stream;
    // A stream replaced by a newer one says nothing more.
    const on = (name, handle) => stream.addEventListener(name, (message) => {
      if (stream === source) handle(message);
    });
    on('snapshot', (message) => {
      heard();
      connected = true;
      retryDelay = 1000;
      applySnapshot(JSON.parse(message.data));
      renderOverview();
      if (model.closed) {
        // Its stream ends at once: look again now and then, not in a loop,
        // for a server that comes back with a new queue.
        stream.close();
        source = null;
        setConnection('closed', 'The queue has stopped; checking again every 5 s');
        retryTimer = setTimeout(connect, 5000);
        return;
      }
      setConnection('live', 'Live');
      // Whatever the page missed while away, its task's page too.
      if (task) loadTask(task.id);
    });
    on('events', (message) => {
      heard();
      for (const event of JSON.parse(message.data)) applyEvent(event);
      renderRunning();
      renderRetrying();
      renderFailures();
      renderEnded();
      renderTask();
    });
    on('stats', (message) => {
      heard();
      applySample(JSON.parse(message.data));
      renderStats();
    });
    on('stored', (message) => {
      heard();
      model.stored = JSON.parse(message.data);
      renderStored();
    });
    on('error', () => {
      if (stream.readyState === EventSource.CLOSED) {
        // The browser gave up (the server answered with an error): try
        // again, less and less often.
        disconnected();
      } else {
        setConnection('reconnecting', 'Connection lost; reconnecting…');
      }
    });
  }

  function disconnected() {
    if (source) source.close();
    source = null;
    const seconds = Math.round(retryDelay / 1000);
    setConnection('disconnected', `Disconnected; retrying in ${seconds} s`);
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  // Ticks every second: elapsed times, and the watchdog of a silent line.
  setInterval(() => {
    if (source && source.readyState === EventSource.OPEN && lastHeard && Date.now() - lastHeard > SILENCE_MS) {
      disconnected();
      return;
    }
    renderRunning();
    renderRetrying();
  }, 1000);

  $('reconnect').addEventListener('click', () => {
    retryDelay = 1000;
    connect();
  });
  $('task-cancel').addEventListener('click', (click) => {
    if (task) cancel(task.id, click.currentTarget);
  });
  $('task-retry').addEventListener('click', () => {
    if (task) retry(task.id);
  });
  window.addEventListener('hashchange', route);
  route();
  connect();
})();
