// The first tabs someone sees: the README's "Try it" walk-through, one step per tab. Lines are
// kept short so they fit the editor at half a laptop screen.

const member = [
  {
    query: `# Sign in with the mock WeChat login: outside
# production any code signs in mock_<code>; the
# demo data has alice and bob. Run it (Ctrl+Enter):
# every tab then sends the token as Authorization.
mutation Login {
  login(code: "alice") {
    accessToken
    refreshToken
    member {
      memberNo
      nickname
      points
    }
  }
}
`,
  },
  {
    query: `# Who you are, and your newest ledger entries.
query MeAndLedger {
  me {
    memberNo
    nickname
    points
    pointsExpiringSoon
    tier { name }
  }
  pointsLedger(first: 5) {
    nodes {
      delta
      balanceAfter
      kind
      source
      note
      createdAt
    }
  }
}
`,
  },
  {
    query: `# Give bob (DEMOB002) some points. Run it twice:
# the same idempotency key answers the first
# result and moves nothing. A new key, a new gift.
mutation Transfer($key: String!) {
  transferPoints(
    toMemberNo: "DEMOB002"
    amount: 50
    idempotencyKey: $key
  ) {
    id
    amount
    member { points }
  }
}
`,
    variables: '{\n  "key": "try-1"\n}',
  },
  {
    query: `# Once per business day; a second check-in the
# same day answers ALREADY_DONE.
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
    query: `# Sign in as an operator. On an empty admin table
# the server creates the SUPERADMIN "admin" with
# ADMIN_BOOTSTRAP_PASSWORD: put it in the variables.
# Every tab then sends the token as Authorization.
mutation AdminLogin(
  $username: String!
  $password: String!
) {
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
    query: `# Members with points, tier and segment. Add
# search: "..." for a memberNo, an openid or
# part of a nickname.
query Members {
  members(first: 10) {
    nodes {
      memberNo
      nickname
      points
      tierCode
      rfmSegment
      blacklisted
    }
  }
}
`,
  },
  {
    query: `# Who you are, and what admins did lately.
query AdminMeAndAudit {
  adminMe { username role }
  auditLog(first: 5) {
    nodes { adminUsername action detail createdAt }
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
