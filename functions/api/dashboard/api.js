// The API client: where the API is (relative to the page), the key kept for this tab, and
// requests with the API's errors turned into ApiError.

// ---------------------------------------------------------------- settings

// The API is mounted under a prefix we cannot know (API Gateway stage,
// LocalStack path, …), so every call is made relative to where this page was
// served from. The page may be opened with or without the trailing slash.
const BASE = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
/** What the server wrote into the page: the API's base path and the live-progress socket. */
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content.trim() || '';
export const API_ROOT = `${BASE}${meta('speedbatch-api')}/`;
export const WS_URL = meta('speedbatch-ws');

const KEY_STORAGE = 'speedbatch.apiKey';

// ---------------------------------------------------------------- API key

// sessionStorage can throw (privacy modes); fall back to memory for this page only.
let memoryKey = '';
export const keyStore = {
  get() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ''; } catch { return memoryKey; }
  },
  set(key) {
    memoryKey = key;
    try { sessionStorage.setItem(KEY_STORAGE, key); } catch { /* memory only */ }
  },
  clear() {
    memoryKey = '';
    try { sessionStorage.removeItem(KEY_STORAGE); } catch { /* nothing stored */ }
  },
};

// ---------------------------------------------------------------- API client

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

const FALLBACK_MESSAGES = {
  400: 'The service did not understand the request.',
  401: 'The API key was not accepted.',
  404: 'Not found.',
  409: 'That is not possible in the job’s current state.',
  413: 'That is too much data for one request.',
  422: 'Some values are not valid.',
  429: 'Too many requests right now. Please wait a moment and try again.',
};

async function errorFromResponse(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  const info = body && typeof body.error === 'object' && body.error ? body.error : {};
  const fallback = FALLBACK_MESSAGES[response.status]
    || (response.status >= 500 ? `The service had a problem (HTTP ${response.status}). Please try again shortly.` : `The request failed (HTTP ${response.status}).`);
  const retryAfter = Number(response.headers.get('retry-after')) || null;
  return new ApiError(response.status, info.code || `http_${response.status}`, info.message || fallback, info.details, retryAfter);
}

/**
 * One request to the API. Returns the Response for 2xx and 304; throws ApiError
 * otherwise. A 401 on a keyed request forgets the key and asks for it again.
 */
export async function apiFetch(path, { method = 'GET', body, etag, signal, key, auth = true, accept = 'application/json', handleUnauthorized = true } = {}) {
  const headers = { accept };
  const apiKey = key ?? keyStore.get();
  if (auth && apiKey) headers['x-api-key'] = apiKey;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (etag) headers['if-none-match'] = etag;
  let response;
  try {
    // no-store: the job changes all the time, and a conditional request is
    // passed through to us as a real 304 instead of being answered from cache.
    response = await fetch(API_ROOT + path, {
      method, headers, signal, cache: 'no-store', credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'The service could not be reached. Check the connection and try again.');
  }
  if (response.ok || response.status === 304) return response;
  const error = await errorFromResponse(response);
  if (error.status === 401 && auth && handleUnauthorized) unauthorized();
  throw error;
}

/** Like apiFetch, but parses JSON: { status, data, etag }. data is null for 304. */
export async function apiJson(path, options = {}) {
  const response = await apiFetch(path, options);
  if (response.status === 304) return { status: 304, data: null, etag: options.etag || null };
  let data = null;
  try { data = await response.json(); } catch {
    throw new ApiError(response.status, 'bad_response', 'The service sent an answer this page cannot read.');
  }
  return { status: response.status, data, etag: response.headers.get('etag') };
}

/** What a 401 on a keyed request does (app.js: forget the key and ask for it again). */
let unauthorized = () => {};
export function whenUnauthorized(handler) {
  unauthorized = handler;
}
