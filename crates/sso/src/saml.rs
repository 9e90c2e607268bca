//! SAML 2.0 sign-in.
