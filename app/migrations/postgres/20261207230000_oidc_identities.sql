-- berth-migration: expand
-- Sign-in with an OpenID provider. An account is linked to the provider's (issuer, subject),
-- never to an e-mail address, which a provider may hand to someone else later. Times are Unix
-- milliseconds (UTC), as everywhere.
CREATE TABLE oidc_identities (
    issuer          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The provider's id in the settings when the link was made: for people reading the table.
    provider        TEXT NOT NULL,
    email           TEXT,
    created_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- Sign-ins under way: created at /start, taken (deleted) once at /callback, so a state is
-- used at most once. Kept on the server (not in a cookie) so every instance behind a load
-- balancer sees the same flows; the browser holds only a random value bound to its flow.
CREATE TABLE oidc_flows (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX oidc_flows_created ON oidc_flows (created_at);

-- Which provider a session came from, so sign-out can offer the provider's end-session page.
ALTER TABLE sessions ADD COLUMN oidc_provider TEXT;
