//! Sockets: binding and the accept loop every TCP service shares, reading without waiting,
//! the bridges' upstream connections and their draining loop (`relay`), the PROXY protocol
//! header of a load balancer, and waiting cheaply per message (`wake`).

pub mod listen;
pub mod proxy_protocol;
pub mod read;
pub mod relay;
pub mod upstream;
pub mod wake;
