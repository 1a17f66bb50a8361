//! Content decoding while streaming: gzip, deflate (zlib or raw) and brotli, stacked in the
//! order applied, into a sink that refuses bytes past its cap, so a decompression bomb stops
//! early. An encoding the probe does not know passes through as received.

use std::io::{self, Write};

/// Content-Encoding layers decoded before giving up; real servers use one.
const MAX_ENCODING_LAYERS: usize = 3;

/// The end of the decoding chain: keeps up to `cap` bytes and then refuses more, which stops
/// an inflating decoder mid-stream instead of letting it expand a bomb.
pub(super) struct Sink {
    pub(super) bytes: Vec<u8>,
    pub(super) cap: u64,
    pub(super) keep: bool,
    pub(super) capped: bool,
}

impl Sink {
    pub(super) fn new(cap: u64, keep: bool) -> Self {
        Self { bytes: Vec::new(), cap, keep, capped: false }
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Write for &mut Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.keep {
            return Ok(buf.len());
        }
        let room = self.cap.saturating_sub(self.bytes.len() as u64);
        if room == 0 {
            self.capped = true;
            return Err(io::Error::other("decoded size limit reached"));
        }
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.bytes.extend_from_slice(&buf[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One layer of the decoding chain.
pub(super) trait Stage: Write + Send {
    /// Drains buffered input and reports a stream that ended badly.
    fn finish(&mut self) -> io::Result<()>;
    /// Whether the sink at the end of the chain refused bytes.
    fn sink_capped(&self) -> bool;
}

impl Stage for &mut Sink {
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn sink_capped(&self) -> bool {
        self.capped
    }
}

pub(super) type Chain<'a> = Box<dyn Stage + 'a>;

impl Stage for Chain<'_> {
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
    fn sink_capped(&self) -> bool {
        (**self).sink_capped()
    }
}

pub(super) struct Gzip<W: Stage>(flate2::write::GzDecoder<W>);
pub(super) struct Zlib<W: Stage>(flate2::write::ZlibDecoder<W>);
pub(super) struct RawDeflate<W: Stage>(flate2::write::DeflateDecoder<W>);
pub(super) struct Brotli<W: Stage>(brotli_decompressor::DecompressorWriter<W>);

/// `deflate` is meant to be zlib-wrapped, but some servers send a raw deflate stream (as
/// browsers tolerate); the first two bytes tell which.
pub(super) enum Deflate<W: Stage> {
    Pending(Vec<u8>, Option<W>),
    Zlib(Zlib<W>),
    Raw(RawDeflate<W>),
}

/// An encoding the probe does not decode: bytes pass through as received.
pub(super) struct Passthrough<W: Stage>(W);

macro_rules! flate_stage {
    ($name:ident) => {
        impl<W: Stage> Write for $name<W> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        impl<W: Stage> Stage for $name<W> {
            fn finish(&mut self) -> io::Result<()> {
                self.0.try_finish()?;
                self.0.get_mut().finish()
            }
            fn sink_capped(&self) -> bool {
                self.0.get_ref().sink_capped()
            }
        }
    };
}
flate_stage!(Gzip);
flate_stage!(Zlib);
flate_stage!(RawDeflate);

/// Stages that only wrap one writer pass writes straight through.
macro_rules! write_through {
    ($($stage:ident),+) => {$(
        impl<W: Stage> Write for $stage<W> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
    )+};
}
write_through!(Brotli, Passthrough);

impl<W: Stage> Stage for Brotli<W> {
    fn finish(&mut self) -> io::Result<()> {
        self.0.close()?;
        self.0.get_mut().finish()
    }
    fn sink_capped(&self) -> bool {
        self.0.get_ref().sink_capped()
    }
}

pub(super) fn looks_like_zlib(header: &[u8]) -> bool {
    let [cmf, flg, ..] = *header else { return false };
    cmf & 0x0f == 8 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
}

impl<W: Stage> Write for Deflate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Deflate::Pending(header, inner) = self {
            let take = buf.len().min(2usize.saturating_sub(header.len()));
            header.extend_from_slice(&buf[..take]);
            if header.len() < 2 {
                return Ok(take);
            }
            let header = std::mem::take(header);
            let inner = inner.take().ok_or_else(|| io::Error::other("deflate decoder reused"))?;
            *self = if looks_like_zlib(&header) {
                Deflate::Zlib(Zlib(flate2::write::ZlibDecoder::new(inner)))
            } else {
                Deflate::Raw(RawDeflate(flate2::write::DeflateDecoder::new(inner)))
            };
            self.write_all(&header)?;
            return Ok(take);
        }
        match self {
            Deflate::Zlib(z) => z.write(buf),
            Deflate::Raw(r) => r.write(buf),
            Deflate::Pending(..) => Ok(0),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Deflate::Zlib(z) => z.flush(),
            Deflate::Raw(r) => r.flush(),
            Deflate::Pending(..) => Ok(()),
        }
    }
}

impl<W: Stage> Stage for Deflate<W> {
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Deflate::Zlib(z) => z.finish(),
            Deflate::Raw(r) => r.finish(),
            Deflate::Pending(header, _) if header.is_empty() => Ok(()),
            Deflate::Pending(..) => Err(io::Error::other("deflate stream too short")),
        }
    }
    fn sink_capped(&self) -> bool {
        match self {
            Deflate::Zlib(z) => z.sink_capped(),
            Deflate::Raw(r) => r.sink_capped(),
            Deflate::Pending(_, inner) => inner.as_ref().is_some_and(|w| w.sink_capped()),
        }
    }
}

impl<W: Stage> Stage for Passthrough<W> {
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
    fn sink_capped(&self) -> bool {
        self.0.sink_capped()
    }
}

/// Builds the chain so that wire bytes meet the last-applied encoding first.
pub(super) fn build_decoder<'a>(encodings: &[String], sink: &'a mut Sink) -> Chain<'a> {
    let known = encodings.len() <= MAX_ENCODING_LAYERS
        && encodings.iter().all(|e| matches!(e.as_str(), "gzip" | "x-gzip" | "deflate" | "br"));
    let mut chain: Chain<'a> = Box::new(sink);
    if !known {
        return Box::new(Passthrough(chain));
    }
    for encoding in encodings {
        chain = match encoding.as_str() {
            "gzip" | "x-gzip" => Box::new(Gzip(flate2::write::GzDecoder::new(chain))),
            "deflate" => Box::new(Deflate::Pending(Vec::new(), Some(chain))),
            _ => Box::new(Brotli(brotli_decompressor::DecompressorWriter::new(chain, 16 * 1024))),
        };
    }
    chain
}
