//! socklab server
