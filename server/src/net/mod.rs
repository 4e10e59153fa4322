//! Sockets: binding and the accept loop every TCP service shares, reading without waiting,
//! the bridges' upstream connections and their draining loop (`relay`), and the PROXY protocol header of a load balancer.

pub mod listen;
pub mod proxy_protocol;
pub mod read;
pub mod relay;
pub mod upstream;
