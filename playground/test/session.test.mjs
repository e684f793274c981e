import { test } from 'node:test';
import assert from 'node:assert/strict';

import { operationToRun, withAuthorization } from '../src/session.js';

test('a stale operation name from the previous tab gives way to the only operation', () => {
  assert.equal(operationToRun('query Me { me { id } }', 'Login'), 'Me');
  assert.equal(operationToRun('query Me { me { id } }', 'Me'), 'Me');
  assert.equal(operationToRun('{ me { id } }', 'Login'), undefined);
});

test('with several operations, or none parsed, the name is left to the server', () => {
  assert.equal(operationToRun('query A { a } query B { b }', 'C'), 'C');
  assert.equal(operationToRun('query {', 'Login'), 'Login');
  assert.equal(operationToRun('query Me { me { id } }', undefined), undefined);
});

test('signing in sets Authorization and keeps the other headers', () => {
  const headers = withAuthorization('{"X-Device-Id": "d1", "authorization": "Bearer old"}', 'new');
  assert.deepEqual(JSON.parse(headers), { 'X-Device-Id': 'd1', Authorization: 'Bearer new' });
  assert.deepEqual(JSON.parse(withAuthorization('not json', 't')), { Authorization: 'Bearer t' });
});
