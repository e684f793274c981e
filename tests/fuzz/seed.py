"""Data for the fuzzer to hit: on top of the demo data, items of every kind and state, a blind
box with every prize kind, tasks, an achievement with a title, a donation project, a price
campaign, points (adjustPoints), a purchase, and member activity (orders, a crowdfund, draws, a
transfer, an invite). Returns the ids and strings that exist, so generated arguments hit real
rows as well as missing ones."""

from __future__ import annotations

import datetime as dt

UPSERT_ITEM = "mutation($i: MallItemInput!) { upsertMallItem(input: $i) { id } }"


def seed_data(api, superadmin: str, member: str) -> dict[str, list[str]]:
    def admin(query: str, variables: dict | None = None) -> dict:
        return api.gql("admin", query, variables, token=superadmin)

    def as_member(token: str, query: str, variables: dict | None = None) -> dict:
        return api.gql("member", query, variables, token=token)

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731

    item = lambda **fields: admin(UPSERT_ITEM, {"i": {  # noqa: E731
        "name": "fuzz item", "description": "", "category": "fuzz", "kind": "PHYSICAL",
        "pointsPrice": 10, "stock": 1000, **fields}})["upsertMallItem"]["id"]
    physical = item(perMemberLimit=50)
    coupon = item(name="fuzz coupon", kind="COUPON", category="coupon", pointsPrice=5,
                  couponValue="20.00", couponThreshold="100.00", couponValidDays=30)
    item(name="fuzz privilege", kind="PRIVILEGE", category="privilege", pointsPrice=20)
    cash = item(name="fuzz points+cash", pointsPrice=0, cashPrice="300.00", stock=100)
    crowdfundable = item(name="fuzz crowdfund", pointsPrice=500, stock=10, crowdfundable=True)
    item(name="fuzz sold out", stock=0)
    item(name="fuzz closed", startsAt="2020-01-01T00:00:00Z", endsAt="2021-01-01T00:00:00Z")
    item(name="fuzz diamond only", minTierRank=3)
    item(name="fuzz inactive", active=False)

    admin("mutation($i: TaskInput!) { upsertTask(input: $i) { id } }", {"i": {
        "code": "fuzz_browse", "name": "fuzz browse", "description": "", "kind": "DAILY",
        "event": "browse_item", "target": 2, "rewardPoints": 5}})
    admin("mutation($i: TaskInput!) { upsertTask(input: $i) { id } }", {"i": {
        "code": "fuzz_hidden", "name": "fuzz hidden", "description": "", "kind": "HIDDEN",
        "event": "draw", "target": 1, "rewardPoints": 10}})
    admin("mutation($i: AchievementInput!) { upsertAchievement(input: $i) { code } }", {"i": {
        "code": "fuzz_first_checkin", "name": "fuzz", "description": "", "category": "fuzz",
        "metric": "checkin.total", "threshold": 1, "rewardPoints": 3, "titleCode": "fuzz_title",
        "titleName": "fuzz title"}})
    box = admin("mutation($i: BlindBoxInput!) { upsertBlindBox(input: $i) { id } }", {"i": {
        "name": "fuzz box", "description": "", "pointsPrice": 10, "dailyLimit": 1000,
        "pityThreshold": 5, "prizes": [
            {"name": "points", "rarity": "COMMON", "kind": "POINTS", "weight": 50, "payload": "5"},
            {"name": "coupon", "rarity": "RARE", "kind": "COUPON", "weight": 20, "stock": 100,
             "payload": "5.00"},
            {"name": "item", "rarity": "EPIC", "kind": "ITEM", "weight": 10, "stock": 20,
             "payload": physical},
            {"name": "hidden task", "rarity": "RARE", "kind": "HIDDEN_TASK", "weight": 10,
             "payload": "fuzz_hidden"},
            {"name": "title", "rarity": "LEGENDARY", "kind": "TITLE", "weight": 5, "stock": 5,
             "payload": "fuzz_title"}]}})["upsertBlindBox"]["id"]
    project = admin("mutation { upsertDonationProject(input: { name: \"fuzz project\", "
                    "description: \"\", targetPoints: 100000 }) { id } }")["upsertDonationProject"]["id"]
    admin("mutation($i: PriceCampaignInput!) { upsertPriceCampaign(input: $i) { id } }", {"i": {
        "name": "fuzz week", "multiplier": "0.8", "startsAt": iso(now - dt.timedelta(days=1)),
        "endsAt": iso(now + dt.timedelta(days=30))}})

    members = admin("{ members(first: 100) { nodes { id memberNo openid } } }")["members"]["nodes"]
    for m in members:
        admin("mutation($m: ID!, $k: String!) { adjustPoints(memberId: $m, delta: 100000, "
              "reason: \"fuzz seed\", idempotencyKey: $k) { id } }", {"m": m["id"], "k": f"seed-{m['id']}"})
    alice = next(m for m in members if m["openid"] == "mock_alice")
    admin("mutation($i: PurchaseInput!) { recordPurchase(input: $i) { applied } }", {"i": {
        "orderNo": "FUZZ-ORDER-1", "memberNo": alice["memberNo"], "amount": "120.00",
        "lines": [{"category": "milk_powder", "amount": "100.00"},
                  {"category": "supplies", "amount": "20.00"}],
        "paidAt": iso(now - dt.timedelta(hours=1))}})

    me = as_member(member, "{ me { inviteCode } }")["me"]
    as_member(member, "mutation { checkIn(idempotencyKey: \"seed-checkin\") { streak } }")
    redeem = "mutation($i: RedeemInput!) { redeem(input: $i) { id } }"
    for key, item_id, extra in (("seed-r1", physical, {}), ("seed-r2", coupon, {}),
                                ("seed-r3", cash, {"pointsToUse": 500})):
        as_member(member, redeem, {"i": {"itemId": item_id, "quantity": 1,
                                         "idempotencyKey": key, **extra}})
    crowdfund = as_member(member, "mutation($i: ID!) { startCrowdfund(itemId: $i) { id } }",
                          {"i": crowdfundable})["startCrowdfund"]["id"]
    as_member(member, "mutation($c: ID!) { contributeCrowdfund(crowdfundId: $c, points: 100, "
              "idempotencyKey: \"seed-cf\") { id } }", {"c": crowdfund})
    as_member(member, "mutation($b: ID!) { drawBlindBox(boxId: $b, count: 5, "
              "idempotencyKey: \"seed-draw\") { pointsSpent } }", {"b": box})
    as_member(member, "mutation($p: ID!) { donatePoints(projectId: $p, points: 10, "
              "idempotencyKey: \"seed-donate\") { id } }", {"p": project})
    as_member(member, "mutation { reportEvent(kind: \"browse_item\", targetId: \"1\", "
              "idempotencyKey: \"seed-browse\") { progress } }")
    bob = next(m for m in members if m["openid"] == "mock_bob")
    as_member(member, "mutation($to: String!) { transferPoints(toMemberNo: $to, amount: 10, "
              "idempotencyKey: \"seed-transfer\") { id } }", {"to": bob["memberNo"]})
    # A friend who joins with alice's code; their refresh token is one the fuzzer may spend.
    carol = api.gql("member", "mutation($c: String!) { login(code: \"fuzz_carol\", inviteCode: $c) "
                    "{ refreshToken } }", {"c": me["inviteCode"]})["login"]

    # Everything that now exists, by id and by the strings that name it.
    ids: set[str] = {physical, coupon, cash, crowdfundable, box, project, crowdfund}
    strings: set[str] = {me["inviteCode"], carol["refreshToken"], "FUZZ-ORDER-1", "alice", "bob",
                         "fuzz_carol", "admin", "fuzz-operator", "seed-checkin", "seed-r1"}
    view = as_member(member, """{
      mallItems(first: 100) { nodes { id category } }
      blindBoxes { id prizes { id } }
      tasks { task { id code } }
      myOrders(first: 100) { nodes { id } }
      myCoupons { id }
      myDraws(first: 100) { nodes { id } }
      donationProjects { id }
      achievementWall { achievements { achievement { code } } titles { code } }
    }""")
    ids |= {n["id"] for n in view["mallItems"]["nodes"]}
    strings |= {n["category"] for n in view["mallItems"]["nodes"]}
    for b in view["blindBoxes"]:
        ids.add(b["id"])
        ids |= {p["id"] for p in b["prizes"]}
    for t in view["tasks"]:
        ids.add(t["task"]["id"])
        strings.add(t["task"]["code"])
    ids |= {n["id"] for n in view["myOrders"]["nodes"]}
    ids |= {c["id"] for c in view["myCoupons"]}
    ids |= {n["id"] for n in view["myDraws"]["nodes"]}
    ids |= {p["id"] for p in view["donationProjects"]}
    strings |= {a["achievement"]["code"] for a in view["achievementWall"]["achievements"]}
    strings |= {t["code"] for t in view["achievementWall"]["titles"]}
    for m in admin("{ members(first: 100) { nodes { id memberNo openid } } }")["members"]["nodes"]:
        ids.add(m["id"])
        strings |= {m["memberNo"], m["openid"]}
    ids |= {e["id"] for e in admin("{ auditLog(first: 100) { nodes { id } } }")["auditLog"]["nodes"]}
    # Real cursors, so `after` pages as well as failing to parse.
    pages = as_member(member, """{ a: mallItems(first: 2) { pageInfo { endCursor } }
      b: pointsLedger(first: 2) { pageInfo { endCursor } }
      c: myOrders(first: 1) { pageInfo { endCursor } } d: myDraws(first: 1) { pageInfo { endCursor } } }""")
    pages |= admin("""{ e: auditLog(first: 2) { pageInfo { endCursor } }
      f: members(first: 2) { pageInfo { endCursor } } }""")
    strings |= {p["pageInfo"]["endCursor"] for p in pages.values() if p["pageInfo"]["endCursor"]}
    # The vocabulary of string arguments: kinds, events, metrics, rarities, months.
    strings |= {"PHYSICAL", "COUPON", "PRIVILEGE", "COMMON", "RARE", "EPIC", "LEGENDARY", "POINTS",
                "ITEM", "HIDDEN_TASK", "TITLE", "DAILY", "WEEKLY", "ONCE", "GROWTH", "CHALLENGE",
                "HIDDEN", "browse_item", "share", "review", "ugc_post", "checkin", "draw", "invite",
                "purchase", "checkin.streak", "checkin.total", "invite.count", "purchase.count",
                "purchase.amount", "mall.redemptions", "blindbox.draws", "points.earned",
                "tasks.claimed", "donation.points", "achievements.unlocked", "default",
                "important_value", "general_winback", now.strftime("%Y-%m"), "2026-02", "1999-13",
                now.strftime("%Y-%m-%d"), "100.00", "5"}
    return {"ids": sorted(ids, key=lambda i: (len(i), i)), "strings": sorted(strings)}
