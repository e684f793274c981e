//! Blind-box resolvers: disclosed boxes, draws and their verification data, members' client
//! seeds; the operator's boxes, seed rotation and statistics.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{blind_box, blind_box_draw, blind_box_prize};

use super::rules;
use super::service::{self, BoxChange, DrawOutcome, PrizeChange, candidate};
use crate::anticheat::{self, Action};
use crate::auth::RoleGuard;
use crate::auth::rules::{OPERATORS, READERS};
use crate::context::ContextExt;
use crate::error::{AppError, AppResult};
use crate::loaders::{ById, LoadExt};
use crate::member::MemberView;
use crate::pagination::{PageInfo, finish_page, page_request};
use crate::scalars::id_number;

/// How rare a prize is. RARE and better end a pity streak.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Rarity", remote = "entity::blind_box_prize::Rarity")]
pub enum RarityView {
    Common,
    Rare,
    Epic,
    Legendary,
}

/// What a prize gives: points, a coupon, a mall item, a hidden task or a title.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PrizeKind", remote = "entity::blind_box_prize::PrizeKind")]
pub enum PrizeKindView {
    Points,
    Coupon,
    Item,
    HiddenTask,
    Title,
}

#[derive(SimpleObject)]
pub struct BlindBoxPrize {
    id: ID,
    name: String,
    rarity: RarityView,
    kind: PrizeKindView,
    /// Disclosed probability of this prize on one draw right now (stock taken into account); all sum to 1.
    probability: f64,
    /// Remaining stock; null for unlimited.
    stock: Option<i64>,
}

impl BlindBoxPrize {
    fn new(prize: blind_box_prize::Model, probability: f64) -> Self {
        BlindBoxPrize {
            id: ID(prize.id.to_string()),
            name: prize.name,
            rarity: prize.rarity.into(),
            kind: prize.kind.into(),
            probability,
            stock: prize.stock,
        }
    }
}

pub struct BlindBox(blind_box::Model);

#[Object]
impl BlindBox {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn points_price(&self) -> i64 {
        self.0.points_price
    }
    /// Draws per member per business day; null for no cap.
    async fn daily_limit(&self) -> Option<i32> {
        self.0.daily_limit
    }
    /// A prize of rarity RARE or better is guaranteed within this many draws; null for none.
    async fn pity_threshold(&self) -> Option<i32> {
        self.0.pity_threshold
    }
    /// Draws since the member's last RARE-or-better prize.
    async fn my_pity_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(service::pity_count(&ctx.app()?.db, ctx.member_id()?, self.0.id).await?)
    }
    async fn prizes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BlindBoxPrize>> {
        let prizes = service::prizes(&ctx.app()?.db, self.0.id).await?;
        let odds = rules::probabilities(&prizes.iter().map(candidate).collect::<Vec<_>>());
        Ok(prizes
            .into_iter()
            .zip(odds)
            .map(|(prize, probability)| BlindBoxPrize::new(prize, probability))
            .collect())
    }
    /// SHA-256 of the current server seed and `prizeTable` (`"{serverSeed}\n{prizeTable}"`),
    /// published before any draw uses it; the README's "Verifying a draw" shows how to check it.
    async fn seed_commitment(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(service::seed(&ctx.app()?.db, self.0.seed_id)
            .await?
            .commitment)
    }
    /// The canonical prize table the current seed commits to: `id:weight:stock:RARITY,...` in
    /// published order, stock `-` for unlimited, as it was when the seed was committed. Null
    /// only for a seed committed before tables were (it is replaced before the next draw).
    async fn prize_table(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(service::seed(&ctx.app()?.db, self.0.seed_id)
            .await?
            .prize_table)
    }
    async fn active(&self) -> bool {
        self.0.active
    }
}

pub struct Draw(blind_box_draw::Model);

impl Draw {
    /// The seed this draw used, batched with the other draws of the page.
    async fn seed(&self, ctx: &Context<'_>) -> AppResult<entity::blind_box_seed::Model> {
        ctx.load_one::<ById<entity::blind_box_seed::Entity>>(self.0.seed_id)
            .await?
            .ok_or_else(|| AppError::internal(format!("seed {} missing", self.0.seed_id)))
    }
}

#[Object]
impl Draw {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn prize(&self, ctx: &Context<'_>) -> async_graphql::Result<BlindBoxPrize> {
        let prize = ctx
            .load_one::<ById<entity::blind_box_prize::Entity>>(self.0.prize_id)
            .await?
            .ok_or(AppError::NotFound("prize"))?;
        // The odds this prize had in the pool it was drawn from.
        let pool: Vec<(i64, u64)> = serde_json::from_str(&self.0.pool).unwrap_or_default();
        let total: u64 = pool.iter().map(|(_, w)| w).sum();
        let weight = pool
            .iter()
            .find(|(id, _)| *id == prize.id)
            .map_or(0, |(_, w)| *w);
        let probability = if total > 0 {
            weight as f64 / total as f64
        } else {
            0.0
        };
        Ok(BlindBoxPrize::new(prize, probability))
    }
    /// True when the pity rule, not chance, decided this prize.
    async fn pity(&self) -> bool {
        self.0.pity
    }
    /// Inputs to verify fairness once the seed is revealed: the commitment of the server seed
    /// (and `prizeTable`) this draw used, published before the draw.
    async fn seed_commitment(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self.seed(ctx).await?.commitment)
    }
    /// The draw's sequence number within its box. Only draws without a `memberNonce` (made
    /// before client seeds) used it in their HMAC message, as `"{memberId}:{nonce}"`.
    async fn nonce(&self) -> i64 {
        self.0.nonce
    }
    /// The member who drew, as used in the HMAC message.
    async fn member_id(&self) -> ID {
        ID(self.0.member_id.to_string())
    }
    /// The member's nonce in the HMAC message `"{clientSeed}:{memberId}:{memberNonce}"`: it
    /// counts the member's draws across all boxes and is never used twice. Null for draws made
    /// before client seeds.
    async fn member_nonce(&self) -> Option<i64> {
        self.0.member_nonce
    }
    /// The member's client seed this draw used. Null for draws made before client seeds.
    async fn client_seed(&self) -> Option<&str> {
        self.0.client_seed.as_deref()
    }
    /// The canonical prize table the seed committed to (see `BlindBox.prizeTable`); the pool
    /// must come from it. Null for seeds committed before tables were.
    async fn prize_table(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.seed(ctx).await?.prize_table)
    }
    /// The server seed, once rotated: on schedule, by hand, or when the box's prizes change.
    async fn revealed_seed(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let seed = self.seed(ctx).await?;
        Ok(seed.revealed_at.map(|_| seed.seed))
    }
    /// The pool the draw was taken from, as `prizeId:weight` in published order (for verifiers).
    async fn pool(&self) -> String {
        let pool: Vec<(i64, u64)> = serde_json::from_str(&self.0.pool).unwrap_or_default();
        pool.iter()
            .map(|(id, w)| format!("{id}:{w}"))
            .collect::<Vec<_>>()
            .join(",")
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(SimpleObject)]
pub struct DrawConnection {
    nodes: Vec<Draw>,
    page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct DrawResult {
    draws: Vec<Draw>,
    points_spent: i64,
    member: MemberView,
    unlocked: Vec<crate::progress::AchievementView>,
}

impl From<DrawOutcome> for DrawResult {
    fn from(o: DrawOutcome) -> Self {
        DrawResult {
            draws: o.draws.into_iter().map(Draw).collect(),
            points_spent: o.points_spent,
            member: MemberView(o.member),
            unlocked: crate::progress::unlocked_achievements(&o.unlocked),
        }
    }
}

#[derive(Default)]
pub struct BlindBoxQuery;

#[Object]
impl BlindBoxQuery {
    async fn blind_boxes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BlindBox>> {
        let boxes = service::active_boxes(&ctx.app()?.db).await?;
        Ok(boxes.into_iter().map(BlindBox).collect())
    }

    /// An active box; NOT_FOUND for one that is inactive (not released, or closed) or missing,
    /// alike, so unreleased boxes and their prizes stay private.
    async fn blind_box(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<BlindBox>> {
        let found = service::find(&ctx.app()?.db, id_number(&id, "id")?)
            .await?
            .filter(|b| b.active)
            .ok_or(AppError::NotFound("blind box"))?;
        Ok(Some(BlindBox(found)))
    }

    /// The member's client seed for blind-box draws (a random one until they choose their
    /// own) and the nonce their next draw takes.
    async fn my_client_seed(&self, ctx: &Context<'_>) -> async_graphql::Result<BlindBoxClientSeed> {
        let (app, member_id) = (ctx.app()?, ctx.member_id()?);
        Ok(service::client_seed(&app.db, member_id, ctx.now()?)
            .await?
            .into())
    }

    #[graphql(complexity = "crate::pagination::page_cost(first, 20, child_complexity)")]
    async fn my_draws(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<DrawConnection> {
        let page = page_request(first, after.as_deref())?;
        let rows = service::draws_of(&ctx.app()?.db, ctx.member_id()?, page).await?;
        let (rows, page_info) = finish_page(rows, page, |d| d.id);
        Ok(DrawConnection {
            nodes: rows.into_iter().map(Draw).collect(),
            page_info,
        })
    }
}

#[derive(Default)]
pub struct BlindBoxMutation;

#[Object]
impl BlindBoxMutation {
    async fn draw_blind_box(
        &self,
        ctx: &Context<'_>,
        box_id: ID,
        #[graphql(default = 1)] count: i32,
        idempotency_key: String,
    ) -> async_graphql::Result<DrawResult> {
        let (app, req, member_id) = anticheat::gated(ctx, Action::Draw).await?;
        let outcome = service::draw(
            &app.db,
            &app.settings,
            member_id,
            id_number(&box_id, "boxId")?,
            i64::from(count),
            &idempotency_key,
            req.now,
        )
        .await?;
        Ok(outcome.into())
    }

    /// Choose the client seed for your next draws: 1 to 64 letters, digits, `-` or `_`
    /// (VALIDATION on `seed` otherwise). Your nonce goes on counting.
    async fn set_blind_box_client_seed(
        &self,
        ctx: &Context<'_>,
        seed: String,
    ) -> async_graphql::Result<BlindBoxClientSeed> {
        let (app, member_id) = (ctx.app()?, ctx.member_id()?);
        Ok(
            service::set_client_seed(&app.db, member_id, &seed, ctx.now()?)
                .await?
                .into(),
        )
    }
}

/// A member's client seed: part of every draw's HMAC message, so nobody can work out their
/// draws ahead without it.
#[derive(SimpleObject)]
pub struct BlindBoxClientSeed {
    client_seed: String,
    /// The `memberNonce` the member's next draw takes.
    next_member_nonce: i64,
}

impl From<entity::blind_box_client_seed::Model> for BlindBoxClientSeed {
    fn from(m: entity::blind_box_client_seed::Model) -> Self {
        BlindBoxClientSeed {
            client_seed: m.client_seed,
            next_member_nonce: m.next_nonce,
        }
    }
}

#[derive(InputObject)]
pub struct BlindBoxPrizeInput {
    name: String,
    rarity: String,
    kind: String,
    weight: i64,
    /// null for unlimited
    stock: Option<i64>,
    /// POINTS: amount; COUPON: value in yuan; ITEM: mall item id; HIDDEN_TASK: task code; TITLE: title code
    payload: String,
}

#[derive(InputObject)]
pub struct BlindBoxInput {
    id: Option<ID>,
    name: String,
    description: String,
    points_price: i64,
    daily_limit: Option<i32>,
    pity_threshold: Option<i32>,
    prizes: Vec<BlindBoxPrizeInput>,
    #[graphql(default = true)]
    active: bool,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct BlindBoxAdmin {
    id: ID,
    name: String,
    #[graphql(skip)]
    box_id: i64,
    #[graphql(skip)]
    seed_id: i64,
}

impl From<blind_box::Model> for BlindBoxAdmin {
    fn from(b: blind_box::Model) -> Self {
        BlindBoxAdmin {
            id: ID(b.id.to_string()),
            name: b.name,
            box_id: b.id,
            seed_id: b.seed_id,
        }
    }
}

#[ComplexObject]
impl BlindBoxAdmin {
    async fn seed_commitment(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(service::seed(&ctx.app()?.db, self.seed_id)
            .await?
            .commitment)
    }
    /// The canonical prize table the current seed commits to.
    async fn prize_table(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(service::seed(&ctx.app()?.db, self.seed_id)
            .await?
            .prize_table)
    }
    /// Seeds revealed so far, newest first, so draws can be verified.
    async fn revealed_seeds(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(service::revealed_seeds(&ctx.app()?.db, self.box_id).await?)
    }
}

#[derive(SimpleObject)]
pub struct PrizeStat {
    prize_id: ID,
    name: String,
    configured_probability: f64,
    observed_frequency: f64,
    count: i64,
}

#[derive(SimpleObject)]
pub struct BlindBoxStats {
    box_id: ID,
    draws: i64,
    prizes: Vec<PrizeStat>,
}

#[derive(Default)]
pub struct BlindBoxAdminQuery;

#[Object]
impl BlindBoxAdminQuery {
    /// Configured against observed prize frequencies.
    #[graphql(guard = "RoleGuard(READERS)")]
    async fn blind_box_stats(
        &self,
        ctx: &Context<'_>,
        box_id: ID,
    ) -> async_graphql::Result<BlindBoxStats> {
        let id = id_number(&box_id, "boxId")?;
        let (draws, rows) = service::stats(&ctx.app()?.db, id).await?;
        Ok(BlindBoxStats {
            box_id,
            draws,
            prizes: rows
                .into_iter()
                .map(|(p, configured, count)| PrizeStat {
                    prize_id: ID(p.id.to_string()),
                    name: p.name,
                    configured_probability: configured,
                    observed_frequency: if draws > 0 {
                        count as f64 / draws as f64
                    } else {
                        0.0
                    },
                    count,
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct BlindBoxAdminMutation;

#[Object]
impl BlindBoxAdminMutation {
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn upsert_blind_box(
        &self,
        ctx: &Context<'_>,
        input: BlindBoxInput,
    ) -> async_graphql::Result<BlindBoxAdmin> {
        let change = BoxChange {
            id: input
                .id
                .as_ref()
                .map(|id| id_number(id, "id"))
                .transpose()?,
            name: input.name,
            description: input.description,
            points_price: input.points_price,
            daily_limit: input.daily_limit,
            pity_threshold: input.pity_threshold,
            prizes: input
                .prizes
                .into_iter()
                .map(|p| PrizeChange {
                    name: p.name,
                    rarity: p.rarity,
                    kind: p.kind,
                    weight: p.weight,
                    stock: p.stock,
                    payload: p.payload,
                })
                .collect(),
            active: input.active,
        };
        Ok(service::upsert(&ctx.app()?.db, change, ctx.now()?)
            .await?
            .into())
    }

    /// Reveal the current seed of a box and commit to a new one (over its prize table now).
    /// Seeds also rotate on their own after `BLINDBOX_SEED_ROTATION` and when the prizes change.
    #[graphql(guard = "RoleGuard(OPERATORS)")]
    async fn rotate_blind_box_seed(
        &self,
        ctx: &Context<'_>,
        box_id: ID,
    ) -> async_graphql::Result<BlindBoxAdmin> {
        let rotated =
            service::rotate_seed(&ctx.app()?.db, id_number(&box_id, "boxId")?, ctx.now()?).await?;
        Ok(rotated.into())
    }
}
