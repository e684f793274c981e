// The first tabs someone sees: the README's "Try it" walk-through, one step per tab.

const member = [
  {
    query: `# Sign in with the mock WeChat login (outside production any code signs in mock_<code>;
# the demo data has alice and bob). Run it with the play button or Ctrl/Cmd+Enter: the
# playground then sends the token as the Authorization header from every tab.
mutation Login {
  login(code: "alice") {
    accessToken
    refreshToken
    member { memberNo nickname points }
  }
}
`,
  },
  {
    query: `# Who you are, and the newest entries of your points ledger.
query MeAndLedger {
  me { memberNo nickname points pointsExpiringSoon tier { name } }
  pointsLedger(first: 5) {
    nodes { delta balanceAfter kind source note createdAt }
  }
}
`,
  },
  {
    query: `# Give bob (DEMOB002) some points. Run it twice: the same idempotency key answers the
# first result and moves nothing. A new key makes a new transfer.
mutation Transfer($key: String!) {
  transferPoints(toMemberNo: "DEMOB002", amount: 50, idempotencyKey: $key) {
    id
    amount
    member { points }
  }
}
`,
    variables: '{\n  "key": "try-1"\n}',
  },
  {
    query: `# Once per business day; a second check-in today answers ALREADY_DONE.
mutation CheckIn {
  checkIn(idempotencyKey: "check-in-1") {
    date
    pointsAwarded
    streak
    streakBonus
    member { points }
  }
}
`,
  },
];

const admin = [
  {
    query: `# Sign in as an operator. The server creates the SUPERADMIN "admin" from
# ADMIN_BOOTSTRAP_PASSWORD on an empty admin table: put that password in the variables.
# After this runs, the playground sends the token as the Authorization header from every tab.
mutation AdminLogin($username: String!, $password: String!) {
  adminLogin(username: $username, password: $password) {
    accessToken
    expiresAt
    admin { username role }
  }
}
`,
    variables: '{\n  "username": "admin",\n  "password": "change-me-now"\n}',
  },
  {
    query: `# Members with their points, tier and segment; search matches a memberNo or openid
# exactly, or part of a nickname.
query Members {
  members(first: 10) {
    nodes { memberNo nickname points tierCode rfmSegment blacklisted }
  }
}
`,
  },
  {
    query: `# Who you are, and what admins did lately.
query AdminMeAndAudit {
  adminMe { username role }
  auditLog(first: 5) {
    nodes { action detail }
  }
}
`,
  },
];

/**
 * @param {'member' | 'admin'} endpoint
 * @param {string} headers the JSON headers every default tab starts with
 */
export function defaultTabs(endpoint, headers) {
  return (endpoint === 'admin' ? admin : member).map((tab) => ({ ...tab, headers }));
}
