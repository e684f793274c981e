// The playground's sign-in: remembers the access token that a login answered (from a tab or
// from the "sign in as" box) and sends it as the Authorization header from every tab whose own
// headers do not set one. Kept per endpoint in sessionStorage, so a reload keeps it and a
// closed browser tab forgets it.

import { parse } from 'graphql';

const LOGIN_FIELDS = ['login', 'refreshSession', 'adminLogin'];

/** Who a login answer says signed in, for the session box. */
function whoFrom(payload) {
  if (payload.member) {
    const { nickname, memberNo } = payload.member;
    return [nickname, memberNo].filter(Boolean).join(' · ') || 'member';
  }
  if (payload.admin) {
    const { username, role } = payload.admin;
    return [username, role].filter(Boolean).join(' · ') || 'admin';
  }
  return 'signed in';
}

export class Session {
  /** @param {string} endpoint 'member' or 'admin' */
  constructor(endpoint) {
    this.key = `loyalty-playground:${endpoint}:session`;
    this.listeners = new Set();
    this.state = null;
    try {
      this.state = JSON.parse(sessionStorage.getItem(this.key) || 'null');
    } catch {
      this.state = null;
    }
  }

  get token() {
    return this.state?.token ?? null;
  }

  get who() {
    return this.state?.who ?? null;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(state) {
    this.state = state;
    try {
      if (state) sessionStorage.setItem(this.key, JSON.stringify(state));
      else sessionStorage.removeItem(this.key);
    } catch {
      // Storage may be off (private mode); the session then lasts as long as the page.
    }
    this.listeners.forEach((listener) => listener(state));
  }

  /** Takes the token from a login answer; forgets it after logout. */
  observe(body) {
    const data = body && typeof body === 'object' ? body.data : null;
    if (!data || typeof data !== 'object') return;
    for (const field of LOGIN_FIELDS) {
      const payload = data[field];
      if (payload && typeof payload.accessToken === 'string') {
        this.set({ token: payload.accessToken, who: whoFrom(payload) });
        return;
      }
    }
    if (data.logout === true) this.set(null);
  }
}

function hasHeader(headers, name) {
  return Object.keys(headers).some((key) => key.toLowerCase() === name);
}

/**
 * The operation to run. Right after a switch of tabs GraphiQL can still hold the previous tab's
 * operation name, which the server would refuse as unknown: a document with one operation runs
 * that one.
 */
export function operationToRun(query, operationName) {
  if (!operationName) return operationName;
  let names;
  try {
    names = parse(query)
      .definitions.filter((definition) => definition.kind === 'OperationDefinition')
      .map((definition) => definition.name?.value);
  } catch {
    return operationName; // The server reports the syntax error.
  }
  if (names.includes(operationName) || names.length !== 1) return operationName;
  return names[0];
}

/**
 * A GraphiQL fetcher for `url` (same origin) that adds the session's token and learns new ones.
 * @param {string} url
 * @param {Session} session
 */
export function makeFetcher(url, session) {
  return async (params, options) => {
    const headers = {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json, application/json;q=0.9',
      ...(options?.headers ?? {}),
    };
    if (session.token && !hasHeader(headers, 'authorization')) {
      headers.Authorization = `Bearer ${session.token}`;
    }
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        ...params,
        operationName: operationToRun(params.query, params.operationName),
      }),
      credentials: 'same-origin',
    });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`HTTP ${response.status}: ${text.slice(0, 500)}`);
    }
    session.observe(body);
    return body;
  };
}

/** A device id for X-Device-Id (anti-cheat keys on it), kept per browser like a real client. */
export function deviceId() {
  const key = 'loyalty-playground:device-id';
  try {
    const known = localStorage.getItem(key);
    if (known) return known;
  } catch {
    // No storage: a new id per page load.
  }
  // getRandomValues works on plain http intranet hosts too, unlike crypto.randomUUID.
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  const id = `playground-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  try {
    localStorage.setItem(key, id);
  } catch {
    // As above.
  }
  return id;
}

/** `headers` (JSON text from the headers editor) with Authorization set to `token`. */
export function withAuthorization(headers, token) {
  let parsed = {};
  try {
    const value = JSON.parse(headers || '{}');
    if (value && typeof value === 'object' && !Array.isArray(value)) parsed = value;
  } catch {
    parsed = {};
  }
  for (const key of Object.keys(parsed)) {
    if (key.toLowerCase() === 'authorization') delete parsed[key];
  }
  return JSON.stringify({ ...parsed, Authorization: `Bearer ${token}` }, null, 2);
}
