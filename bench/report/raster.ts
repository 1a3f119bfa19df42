// A tiny RGB raster with anti-aliasing by supersampling, and a PNG encoder
// (zlib from Node): enough to draw the report's plots with no dependencies.
import { deflateSync } from "node:zlib";
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from "./font.js";

export type Rgb = readonly [number, number, number];

/** Internal pixels per output pixel, per axis. */
const SS = 3;

export class Canvas {
  private readonly w: number;
  private readonly h: number;
  private readonly px: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.w = width * SS;
    this.h = height * SS;
    this.px = new Uint8Array(this.w * this.h * 3);
    for (let i = 0; i < this.w * this.h; i++) this.px.set(background, i * 3);
  }

  /** Fills a rectangle given in output pixels (fractions allowed). */
  rect(x: number, y: number, w: number, h: number, color: Rgb): void {
    const x0 = Math.max(0, Math.round(x * SS));
    const y0 = Math.max(0, Math.round(y * SS));
    const x1 = Math.min(this.w, Math.round((x + w) * SS));
    const y1 = Math.min(this.h, Math.round((y + h) * SS));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.px.set(color, (yy * this.w + xx) * 3);
  }

  /** A line of `width` output pixels from (x0, y0) to (x1, y1). */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, width = 1): void {
    const r = (width * SS) / 2;
    const [ax, ay, bx, by] = [x0 * SS, y0 * SS, x1 * SS, y1 * SS];
    const steps = Math.max(1, Math.ceil(Math.hypot(bx - ax, by - ay)));
    const r2 = r * r;
    const span = Math.ceil(r);
    for (let s = 0; s <= steps; s++) {
      const cx = ax + ((bx - ax) * s) / steps;
      const cy = ay + ((by - ay) * s) / steps;
      for (let dy = -span; dy <= span; dy++) {
        const yy = Math.round(cy + dy);
        if (yy < 0 || yy >= this.h) continue;
        for (let dx = -span; dx <= span; dx++) {
          const xx = Math.round(cx + dx);
          if (xx < 0 || xx >= this.w) continue;
          if ((xx - cx) ** 2 + (yy - cy) ** 2 <= r2) this.px.set(color, (yy * this.w + xx) * 3);
        }
      }
    }
  }

  polyline(points: ReadonlyArray<readonly [number, number]>, color: Rgb, width = 2): void {
    for (let i = 1; i < points.length; i++) this.line(points[i - 1]![0], points[i - 1]![1], points[i]![0], points[i]![1], color, width);
  }

  /** A dashed horizontal or vertical line. */
  dashed(x0: number, y0: number, x1: number, y1: number, color: Rgb, dash = 4): void {
    const length = Math.hypot(x1 - x0, y1 - y0);
    for (let d = 0; d < length; d += 2 * dash) {
      const e = Math.min(length, d + dash);
      this.line(
        x0 + ((x1 - x0) * d) / length,
        y0 + ((y1 - y0) * d) / length,
        x0 + ((x1 - x0) * e) / length,
        y0 + ((y1 - y0) * e) / length,
        color,
        1,
      );
    }
  }

  disc(x: number, y: number, radius: number, color: Rgb): void {
    this.line(x, y, x, y, color, radius * 2);
  }

  /** Width in output pixels of `text` at `scale`. */
  static textWidth(text: string, scale = 2): number {
    return text.length * (GLYPH_WIDTH + 1) * scale - scale;
  }

  static textHeight(scale = 2): number {
    return (GLYPH_HEIGHT - 1) * scale;
  }

  /** Text with its top-left corner at (x, y); `align` moves the anchor. `vertical` draws it rotated, reading upwards. */
  text(
    text: string,
    x: number,
    y: number,
    color: Rgb,
    options: { scale?: number; align?: "left" | "center" | "right"; vertical?: boolean } = {},
  ): void {
    const scale = options.scale ?? 2;
    const width = Canvas.textWidth(text, scale);
    const offset = options.align === "center" ? width / 2 : options.align === "right" ? width : 0;
    let pen = 0;
    for (const char of text) {
      const rows = glyph(char);
      for (let row = 0; row < GLYPH_HEIGHT; row++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (!rows[row]![col]) continue;
          const u = pen + col * scale - offset;
          const v = row * scale;
          if (options.vertical) this.rect(Math.round(x + v), Math.round(y - u - scale), scale, scale, color);
          else this.rect(Math.round(x + u), Math.round(y + v), scale, scale, color);
        }
      }
      pen += (GLYPH_WIDTH + 1) * scale;
    }
  }

  /** Averages each SS x SS block and encodes the result as an 8-bit RGB PNG. */
  toPng(): Buffer {
    const rowBytes = this.width * 3 + 1;
    const raw = Buffer.alloc(rowBytes * this.height);
    for (let y = 0; y < this.height; y++) {
      raw[y * rowBytes] = 0; // filter: none
      for (let x = 0; x < this.width; x++) {
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let dy = 0; dy < SS; dy++) for (let dx = 0; dx < SS; dx++) sum += this.px[((y * SS + dy) * this.w + x * SS + dx) * 3 + c]!;
          raw[y * rowBytes + 1 + x * 3 + c] = Math.round(sum / (SS * SS));
        }
      }
    }
    const header = Buffer.alloc(13);
    header.writeUInt32BE(this.width, 0);
    header.writeUInt32BE(this.height, 4);
    header[8] = 8; // bit depth
    header[9] = 2; // colour type: RGB
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", header),
      chunk("IDAT", deflateSync(raw, { level: 9 })),
      chunk("IEND", Buffer.alloc(0)),
    ]);
  }
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
