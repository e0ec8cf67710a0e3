import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32, deflateSync } from "node:zlib";

/*
 * Draws the Teams app icons with node:zlib alone: color.png (192×192, the accent colour with a
 * white gate) and outline.png (32×32, white on transparent, as Teams requires of outline icons).
 * Run: node --import tsx manifest/teams/icons.ts
 */

function png(size: number, pixel: (x: number, y: number) => [number, number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(6, 9); // RGBA
  const rows = Buffer.alloc(size * (1 + size * 4));
  for (let y = 0; y < size; y++) {
    rows[y * (1 + size * 4)] = 0; // no filter
    for (let x = 0; x < size; x++) Buffer.from(pixel(x, y)).copy(rows, y * (1 + size * 4) + 1 + x * 4);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}

/** A gate: two posts and a bar, in a square of side 1 (coordinates from 0 to 1). */
function gate(u: number, v: number): boolean {
  const post = (u > 0.22 && u < 0.34) || (u > 0.66 && u < 0.78);
  const bar = v > 0.38 && v < 0.5 && u > 0.22 && u < 0.78;
  return (post && v > 0.22 && v < 0.8) || bar;
}

const here = dirname(fileURLToPath(import.meta.url));
const ACCENT: [number, number, number, number] = [0x1f, 0x6f, 0xeb, 255];
writeFileSync(join(here, "color.png"), png(192, (x, y) => (gate(x / 192, y / 192) ? [255, 255, 255, 255] : ACCENT)));
writeFileSync(join(here, "outline.png"), png(32, (x, y) => (gate(x / 32, y / 32) ? [255, 255, 255, 255] : [0, 0, 0, 0])));
