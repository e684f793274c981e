// The GraphQL playground: GraphiQL with the tabs of the README's walk-through, for the member
// or the admin endpoint (the server says which), all served from the server's own origin.
import './workers.js';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import './playground.css';

import { StrictMode, useMemo } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL, HISTORY_PLUGIN } from 'graphiql';
import { explorerPlugin } from '@graphiql/plugin-explorer';

import { readConfig } from './config.js';
import { Session, deviceId, makeFetcher } from './session.js';
import { defaultTabs } from './tabs.js';
import { SessionBox } from './SessionBox.jsx';

const config = readConfig();
document.title = config.title;

// GraphiQL keeps tabs and history in localStorage; one namespace per endpoint, so the member
// and admin pages do not show each other's tabs.
const storage = {
  prefix: `loyalty-playground:${config.endpoint}:`,
  getItem(key) {
    return localStorage.getItem(this.prefix + key);
  },
  setItem(key, value) {
    localStorage.setItem(this.prefix + key, value);
  },
  removeItem(key) {
    localStorage.removeItem(this.prefix + key);
  },
  clear() {
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(this.prefix)) localStorage.removeItem(key);
    }
  },
  get length() {
    return Object.keys(localStorage).filter((key) => key.startsWith(this.prefix)).length;
  },
};

const session = new Session(config.endpoint);
const fetcher = makeFetcher(config.url, session);
const headers = JSON.stringify({ 'X-Device-Id': deviceId() }, null, 2);
// GraphiQL's own history, and the explorer that builds an operation from the schema by clicks.
const plugins = [HISTORY_PLUGIN, explorerPlugin()];

function Playground() {
  const tabs = useMemo(() => defaultTabs(config.endpoint, headers), []);
  return (
    <GraphiQL
      fetcher={fetcher}
      storage={storage}
      plugins={plugins}
      defaultTabs={tabs}
      defaultHeaders={headers}
      // The admin sign-in needs its password in the variables; members need the headers.
      defaultEditorToolsVisibility={config.endpoint === 'admin' ? 'variables' : 'headers'}
    >
      <GraphiQL.Logo>
        <SessionBox config={config} session={session} fetcher={fetcher} />
      </GraphiQL.Logo>
    </GraphiQL>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <Playground />
  </StrictMode>,
);
