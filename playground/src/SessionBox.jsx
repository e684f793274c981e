// Top right of the page: which API this is, who is signed in, and (member endpoint, outside
// production) a "sign in as" box that runs the mock login and fills the Authorization header.
import { useEffect, useState } from 'react';
import { useGraphiQL } from '@graphiql/react';

import { withAuthorization } from './session.js';

const SIGN_IN = `mutation SignInAs($code: String!) {
  login(code: $code) { accessToken member { memberNo nickname } }
}`;

export function SessionBox({ config, session, fetcher }) {
  const [who, setWho] = useState(session.who);
  const [code, setCode] = useState('alice');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const headerEditor = useGraphiQL((state) => state.headerEditor);

  useEffect(() => session.subscribe((state) => setWho(state?.who ?? null)), [session]);

  async function signIn(event) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const body = await fetcher(
        { query: SIGN_IN, variables: { code: code.trim() }, operationName: 'SignInAs' },
        // The box signs in afresh, whatever token the session holds.
        { headers: { Authorization: '' } },
      );
      const message = body.errors?.[0]?.message;
      if (message) throw new Error(message);
      if (headerEditor && session.token) {
        headerEditor.setValue(withAuthorization(headerEditor.getValue(), session.token));
      }
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="playground-session">
      <span className="playground-title">{config.title}</span>
      <span className="playground-who" data-testid="session-who">
        {who ? (
          <>
            Signed in as <strong>{who}</strong>{' '}
            <button type="button" className="playground-link" onClick={() => session.set(null)}>
              sign out
            </button>
          </>
        ) : (
          'Not signed in'
        )}
      </span>
      {config.signInAs && (
        <form className="playground-sign-in" onSubmit={signIn} aria-label="Sign in as">
          <label>
            Sign in as{' '}
            <input
              value={code}
              onChange={(e) => setCode(e.target.value)}
              size={7}
              spellCheck={false}
              aria-label="Mock WeChat code"
            />
          </label>
          <button type="submit" disabled={busy || !code.trim()}>
            Sign in
          </button>
          {error && (
            <span className="playground-error" role="alert">
              {error}
            </span>
          )}
        </form>
      )}
    </div>
  );
}
