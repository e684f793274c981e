// The default tabs are valid operations against the served schemas (api/schema/*.graphql), so
// a schema change that breaks the walk-through fails here, not in front of a newcomer.
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { buildSchema, parse, validate } from 'graphql';

import { defaultTabs } from '../src/tabs.js';

const schemaOf = (name) =>
  buildSchema(readFileSync(new URL(`../../api/schema/${name}.graphql`, import.meta.url), 'utf8'));

for (const endpoint of ['member', 'admin']) {
  test(`the ${endpoint} tabs are valid against the served ${endpoint} schema`, () => {
    const schema = schemaOf(endpoint);
    const tabs = defaultTabs(endpoint, '{}');
    assert.ok(tabs.length >= 3);
    for (const tab of tabs) {
      const errors = validate(schema, parse(tab.query));
      assert.deepEqual(errors.map(String), [], tab.query);
      if (tab.variables) JSON.parse(tab.variables);
    }
  });
}

test('the member walk-through starts with the login and the admin one with adminLogin', () => {
  assert.match(defaultTabs('member', '{}')[0].query, /mutation Login \{\s*login\(/);
  assert.match(defaultTabs('admin', '{}')[0].query, /adminLogin\(/);
  const headers = '{"X-Device-Id": "d"}';
  assert.ok(defaultTabs('member', headers).every((tab) => tab.headers === headers));
});
