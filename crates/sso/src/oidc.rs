//! OpenID Connect sign-in.
