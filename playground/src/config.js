// What the server tells the page about where it is: filled into <meta name="app-config"> by
// the server (no inline script, so the CSP can forbid them).

/**
 * @typedef {object} PlaygroundConfig
 * @property {'member' | 'admin'} endpoint which API this page talks to
 * @property {string} url the GraphQL endpoint's path
 * @property {string} title shown in the page title and the logo
 * @property {boolean} signInAs whether the mock "sign in as" box may be shown (never in production)
 */

/** @returns {PlaygroundConfig} */
export function readConfig() {
  let raw = {};
  try {
    raw = JSON.parse(document.querySelector('meta[name="app-config"]')?.content || '{}');
  } catch {
    raw = {};
  }
  const endpoint = raw.endpoint === 'admin' ? 'admin' : 'member';
  return {
    endpoint,
    url: typeof raw.url === 'string' ? raw.url : endpoint === 'admin' ? '/admin/graphql' : '/graphql',
    title: typeof raw.title === 'string' ? raw.title : 'Loyalty GraphQL playground',
    signInAs: raw.signInAs === true && endpoint === 'member',
  };
}
