-- Needs scoring (issue 5): household profiles with their achievements and the 22 deprivation
-- indicators, assessments, caseworker decisions, the synthetic district's hidden ground truth,
-- "policy finds people" review tasks and the assistance households already receive.
-- Everything here is personal data of a household: civil-affairs staff only (ARCHITECTURE.md).
-- depends: 0008.webhook-refusals

-- One row per household. Protected attributes (head_sex, head_age_band, hukou, ethnicity) are kept
-- ONLY for fairness reporting: never a model feature, never a cutoff. The achievements are what
-- the deprivation cutoffs work on; ``indicators`` holds the deprivations as one boolean[] in the
-- fixed order of the indicator set named by ``indicator_set_version`` (cityops.needs_data.INDICATORS,
-- cityops/data/needs_indicators.toml), so scoring reads the whole district in one bulk fetch.
CREATE TABLE household_profiles (
    household_id             text PRIMARY KEY REFERENCES households (id) ON DELETE CASCADE,
    household_type           text NOT NULL CHECK (household_type IN ('elderly_alone',
                                 'elderly_couple', 'single_parent', 'disabled_member', 'family',
                                 'other')),
    head_sex                 char(1) NOT NULL CHECK (head_sex IN ('F', 'M')),
    head_age_band            text NOT NULL CHECK (head_age_band IN ('<40', '40-59', '60-79', '80+')),
    hukou                    text NOT NULL CHECK (hukou IN ('local', 'non_local')),
    ethnicity                text NOT NULL CHECK (ethnicity IN ('han', 'minority')),
    income_per_capita_month  numeric(10, 2) NOT NULL CHECK (income_per_capita_month >= 0),
    financial_assets         numeric(12, 2) NOT NULL CHECK (financial_assets >= 0),
    floor_area_per_person    real NOT NULL CHECK (floor_area_per_person >= 0),
    medical_spending_share   real NOT NULL CHECK (medical_spending_share >= 0),
    education_spending_share real NOT NULL CHECK (education_spending_share >= 0),
    months_unemployed        smallint NOT NULL DEFAULT 0 CHECK (months_unemployed >= 0),
    indicators               boolean[] NOT NULL CHECK (cardinality(indicators) > 0
                                 AND array_position(indicators, NULL) IS NULL),
    indicator_set_version    text NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now(),
    source                   text NOT NULL CHECK (source IN ('synthetic', 'import'))
);
CREATE INDEX household_profiles_type ON household_profiles (household_type);

-- A scoring of one household: c exactly as a fraction (score_num / score_den), so c >= k is
-- decided in integers, never with a floating-point slip at the cutoff.
CREATE TABLE needs_assessments (
    id                    bigserial PRIMARY KEY,
    household_id          text NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    at                    timestamptz NOT NULL DEFAULT now(),
    indicator_set_version text NOT NULL,
    score_num             bigint NOT NULL CHECK (score_num >= 0),
    score_den             bigint NOT NULL CHECK (score_den > 0 AND score_num <= score_den),
    identified            boolean NOT NULL,
    model_probability     real CHECK (model_probability BETWEEN 0 AND 1),
    details               jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX needs_assessments_household ON needs_assessments (household_id, at DESC);

-- What caseworkers decided, with a reason always. ``by`` = 'simulation' for the synthetic past.
CREATE TABLE needs_decisions (
    id           bigserial PRIMARY KEY,
    household_id text NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    by           text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('approved', 'declined', 'visit_scheduled',
                                                   'visited_helped')),
    reason       text NOT NULL CHECK (reason <> ''),
    programme    text CHECK (programme IN ('dibao', 'low_income', 'temporary_assistance',
                                           'old_age_allowance', 'care_visit'))
);
CREATE INDEX needs_decisions_household ON needs_decisions (household_id, at DESC);

-- THE SIMULATION'S GROUND TRUTH, for the SYNTHETIC district only: whether a household is really
-- in need (latent hardship plus noise), hidden from scoring and from the pages; used only to
-- measure the index, the model and the bias of past decisions. Empty for real, imported data.
CREATE TABLE needs_true (
    household_id text PRIMARY KEY REFERENCES households (id) ON DELETE CASCADE,
    in_need      boolean NOT NULL
);

-- "Policy finds people": a versioned rule fired for a household; staff work the task.
CREATE TABLE review_tasks (
    id           bigserial PRIMARY KEY,
    household_id text NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    rule_id      text NOT NULL,
    rule_version text NOT NULL,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'dismissed')),
    done_by      text,
    done_at      timestamptz,
    note         text,
    CHECK ((status = 'open') = (done_at IS NULL))
);
-- one open task per household and rule version: a rule run twice does not duplicate work
CREATE UNIQUE INDEX review_tasks_open ON review_tasks (household_id, rule_id, rule_version)
    WHERE status = 'open';
CREATE INDEX review_tasks_status ON review_tasks (status, fired_at);

-- Who already receives what.
CREATE TABLE assistance (
    household_id text NOT NULL REFERENCES households (id) ON DELETE CASCADE,
    programme    text NOT NULL CHECK (programme IN ('dibao', 'low_income', 'temporary_assistance',
                                                    'old_age_allowance', 'disability_allowance')),
    since        date NOT NULL,
    PRIMARY KEY (household_id, programme)
);
