//! `socklab-uring-relay LISTEN UPSTREAM`: a TCP relay on io_uring, for `cargo xtask bench`.
//!
//! Each accepted connection gets its own connection to UPSTREAM, and bytes are copied both ways,
//! nothing else — like `socklab-loadgen bare-relay`, but one thread drives every
//! socket through one io_uring: a `recv` is always queued on each socket, its completion queues
//! the `send` to the other side, and that send's completion queues the next `recv`. Every pass
//! submits all queued operations with one `io_uring_enter`, where epoll needs `epoll_wait` plus
//! one `recv` and one `send` syscall per message. It measures how far that moves the floor.
//! It stops when standard input closes.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::process::ExitCode;

use io_uring::{IoUring, opcode, squeue, types};

/// Bytes read at once per direction (a reply line is short).
const BUF: usize = 4096;
/// `user_data` of the accept operation; the others are `connection << 2 | op`.
const ACCEPT: u64 = u64::MAX;
/// Operations: receive from side 0/1, send what side 0/1 sent to the other side.
const RECV: u64 = 0;
const SEND: u64 = 2;

/// One direction: bytes read from one side, waiting to be written to the other.
struct Half {
    buf: Box<[u8; BUF]>,
    len: usize,
    sent: usize,
}

/// A relayed connection: side 0 is the client, side 1 the upstream.
struct Conn {
    fds: [RawFd; 2],
    halves: [Half; 2],
    open: bool,
}

impl Conn {
    fn close(&mut self) {
        if self.open {
            self.open = false;
            for fd in self.fds {
                // SAFETY: the relay owns these descriptors and closes each once (`open` guards).
                unsafe { libc::close(fd) };
            }
        }
    }
}

fn user_data(conn: usize, op: u64, side: usize) -> u64 {
    ((conn as u64) << 2) | (op + side as u64)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, upstream] = args.as_slice() else {
        eprintln!("usage: socklab-uring-relay LISTEN_ADDR UPSTREAM_ADDR");
        return ExitCode::from(2);
    };
    match run(listen, upstream) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("socklab-uring-relay: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(listen: &str, upstream: &str) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    println!("uring relay on {} to {upstream}", listener.local_addr()?);
    std::thread::spawn(|| {
        let mut stdin = io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(1..) = stdin.read(&mut buf) {}
        std::process::exit(0);
    });
    let lfd = types::Fd(listener.as_raw_fd());
    let accept = || {
        opcode::Accept::new(lfd, std::ptr::null_mut(), std::ptr::null_mut())
            .build()
            .user_data(ACCEPT)
    };
    let mut ring = IoUring::new(4096)?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut queued: Vec<squeue::Entry> = vec![accept()];
    loop {
        {
            let mut sq = ring.submission();
            for entry in queued.drain(..) {
                // SAFETY: every buffer an entry points into is a boxed array owned by `conns`,
                // which only grows (a closed connection keeps its buffers), so it outlives the
                // operation.
                if unsafe { sq.push(&entry) }.is_err() {
                    return Err(io::Error::other("submission queue full"));
                }
            }
        }
        ring.submit_and_wait(1)?;
        let done: Vec<(u64, i32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (data, res) in done {
            if data == ACCEPT {
                queued.push(accept());
                if res < 0 {
                    continue;
                }
                let client = res;
                let up = match TcpStream::connect(upstream) {
                    Ok(s) => s,
                    Err(_) => {
                        // SAFETY: the accepted descriptor is ours and not used elsewhere.
                        unsafe { libc::close(client) };
                        continue;
                    }
                };
                up.set_nodelay(true)?;
                set_nodelay(client);
                let idx = conns.len();
                let half = || Half {
                    buf: Box::new([0u8; BUF]),
                    len: 0,
                    sent: 0,
                };
                conns.push(Conn {
                    fds: [client, up.into_raw_fd()],
                    halves: [half(), half()],
                    open: true,
                });
                for side in 0..2 {
                    queued.push(recv(&mut conns[idx], idx, side));
                }
                continue;
            }
            let idx = (data >> 2) as usize;
            let op = data & 3;
            let Some(conn) = conns.get_mut(idx) else {
                continue;
            };
            if !conn.open {
                continue;
            }
            if op < SEND {
                let side = (op - RECV) as usize;
                if res <= 0 {
                    conn.close();
                    continue;
                }
                let h = &mut conn.halves[side];
                h.len = res as usize;
                h.sent = 0;
                queued.push(send(conn, idx, side));
            } else {
                let side = (op - SEND) as usize;
                if res < 0 {
                    conn.close();
                    continue;
                }
                let h = &mut conn.halves[side];
                h.sent += res as usize;
                queued.push(if h.sent < h.len {
                    send(conn, idx, side)
                } else {
                    recv(conn, idx, side)
                });
            }
        }
    }
}

/// Receive into side `side`'s buffer.
fn recv(conn: &mut Conn, idx: usize, side: usize) -> squeue::Entry {
    let buf = conn.halves[side].buf.as_mut_ptr();
    opcode::Recv::new(types::Fd(conn.fds[side]), buf, BUF as u32)
        .build()
        .user_data(user_data(idx, RECV, side))
}

/// Send the rest of what side `side` sent to the other side.
fn send(conn: &mut Conn, idx: usize, side: usize) -> squeue::Entry {
    let h = &conn.halves[side];
    let rest = &h.buf[h.sent..h.len];
    opcode::Send::new(
        types::Fd(conn.fds[1 - side]),
        rest.as_ptr(),
        rest.len() as u32,
    )
    .build()
    .user_data(user_data(idx, SEND, side))
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
