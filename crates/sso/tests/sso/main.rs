//! Tests of the SSO protocols against real identity providers.
mod saml;
