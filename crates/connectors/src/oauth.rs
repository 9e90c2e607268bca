//! OAuth 2.0 for `rest` connections: authorization code with PKCE, refresh, client credentials
//! and revocation, over the egress-checked HTTP client.
