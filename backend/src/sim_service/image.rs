//! Small PNG pictures for generated attachments, made deterministically from a seed: the
//! same message always carries the same picture. A stored (uncompressed) deflate stream
//! keeps the encoder a few lines; the pictures are at most a few kilobytes anyway.

/// Side lengths drawn from the seed, in pixels.
const SIDE_MIN: u32 = 16;
const SIDE_MAX: u32 = 40;

/// A `side`×`side` RGB picture (side from the seed): a two-colour gradient with a disc.
pub fn picture(seed: &[u8; 32]) -> Vec<u8> {
    let side = SIDE_MIN + u32::from(seed[0]) % (SIDE_MAX - SIDE_MIN + 1);
    let (a, b) = ([seed[1], seed[2], seed[3]], [seed[4], seed[5], seed[6]]);
    let disc = [seed[7], seed[8], seed[9]];
    let (cx, cy) = (u32::from(seed[10]) % side, u32::from(seed[11]) % side);
    let radius = side / 4 + u32::from(seed[12]) % (side / 4 + 1);
    let mut rgb = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let (dx, dy) = (x.abs_diff(cx), y.abs_diff(cy));
            if dx * dx + dy * dy <= radius * radius {
                rgb.extend_from_slice(&disc);
                continue;
            }
            let t = (x + y) * 255 / (2 * side - 2);
            for c in 0..3 {
                let mix = (u32::from(a[c]) * (255 - t) + u32::from(b[c]) * t) / 255;
                rgb.push(mix as u8);
            }
        }
    }
    png(side, side, &rgb)
}

/// An 8-bit RGB PNG of `rgb` (`width * height * 3` bytes).
pub fn png(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    assert_eq!(
        rgb.len(),
        (width * height * 3) as usize,
        "one RGB triple per pixel"
    );
    let mut raw = Vec::with_capacity(rgb.len() + height as usize);
    for row in rgb.chunks((width * 3) as usize) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib around stored deflate blocks (each at most 65,535 bytes).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    if blocks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn pictures_are_small_valid_pngs_and_deterministic() {
        let seed = *blake3::hash(b"alice 7").as_bytes();
        let one = picture(&seed);
        assert_eq!(one, picture(&seed));
        assert_ne!(one, picture(blake3::hash(b"alice 8").as_bytes()));
        assert!(one.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(one.len() < 6_000, "{} bytes", one.len());
        // IHDR: width and height within the bounds, equal.
        let width = u32::from_be_bytes(one[16..20].try_into().unwrap());
        assert!((SIDE_MIN..=SIDE_MAX).contains(&width));
        assert_eq!(&one[12..16], b"IHDR");
        assert!(one.ends_with(&[0xAE, 0x42, 0x60, 0x82]), "IEND's CRC");
    }
}
