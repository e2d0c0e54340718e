;; Pillow's 8-bit resampling passes (Resample.c: ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc)
;; in WebAssembly SIMD, for RGB images (3 interleaved bytes per pixel). Same integer arithmetic as the JavaScript
;; port in pilResize.ts: 22-bit fixed-point weights, int32 sums started at 1 << 21, an arithmetic shift by 22 and
;; clipping to 0…255 (here: i32 → i16 → u8 saturating narrows, which clip exactly as Pillow's clip8).
;; The caller (wasmResize.ts) lays out the buffers and the coefficient tables in memory, padded so that the
;; 4-byte pixel loads/stores and the 16-byte row loads/stores may run past the last pixel.
;; Assembled by `npm run build-wasm` (wabt) into resampleWasm.generated.ts.
(module
  (memory (export "memory") 1)

  ;; rows × width output pixels from source rows [rowFirst, rowFirst + rows): for output x, taps[x] source
  ;; pixels from first[x] with weights[x * ksize …]. dst rows are width * 3 bytes; one byte past the end is written.
  (func (export "horizontal")
    (param $src i32) (param $srcStride i32) (param $rowFirst i32) (param $rows i32) (param $width i32)
    (param $ksize i32) (param $first i32) (param $taps i32) (param $weights i32) (param $dst i32)
    (local $y i32) (local $x i32) (local $row i32) (local $p i32) (local $k i32) (local $n i32)
    (local $wp i32) (local $o i32) (local $acc v128) (local $px v128)
    (local.set $o (local.get $dst))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $rows)))
        (local.set $row (i32.add (local.get $src) (i32.mul (i32.add (local.get $rowFirst) (local.get $y)) (local.get $srcStride))))
        (local.set $x (i32.const 0))
        (block $colsDone
          (loop $colLoop
            (br_if $colsDone (i32.ge_u (local.get $x) (local.get $width)))
            (local.set $p (i32.add (local.get $row) (i32.mul (i32.load (i32.add (local.get $first) (i32.shl (local.get $x) (i32.const 2)))) (i32.const 3))))
            (local.set $n (i32.load (i32.add (local.get $taps) (i32.shl (local.get $x) (i32.const 2)))))
            (local.set $wp (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $x) (local.get $ksize)) (i32.const 2))))
            (local.set $acc (i32x4.splat (i32.const 2097152)))
            (local.set $k (i32.const 0))
            (block $tapsDone
              (loop $tapLoop
                (br_if $tapsDone (i32.ge_u (local.get $k) (local.get $n)))
                (local.set $px (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $p)))))
                (local.set $acc (i32x4.add (local.get $acc) (i32x4.mul (local.get $px) (i32x4.splat (i32.load (local.get $wp))))))
                (local.set $p (i32.add (local.get $p) (i32.const 3)))
                (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $tapLoop)))
            (local.set $acc (i32x4.shr_s (local.get $acc) (i32.const 22)))
            (local.set $acc (i16x8.narrow_i32x4_s (local.get $acc) (local.get $acc)))
            (local.set $acc (i8x16.narrow_i16x8_u (local.get $acc) (local.get $acc)))
            (i32.store (local.get $o) (i32x4.extract_lane 0 (local.get $acc)))
            (local.set $o (i32.add (local.get $o) (i32.const 3)))
            (local.set $x (i32.add (local.get $x) (i32.const 1)))
            (br $colLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rowLoop))))

  ;; height output rows of `stride` bytes: row y sums taps[y] rows of temp from first[y] - rowFirst, weighted by
  ;; weights[y * ksize …]. 16 bytes at a time; up to 15 bytes past each row (and past the buffers) are touched.
  (func (export "vertical")
    (param $temp i32) (param $stride i32) (param $rowFirst i32) (param $height i32)
    (param $ksize i32) (param $first i32) (param $taps i32) (param $weights i32) (param $out i32)
    (local $y i32) (local $i i32) (local $base i32) (local $n i32) (local $wp0 i32) (local $wp i32)
    (local $p i32) (local $k i32) (local $o i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $v v128) (local $w v128) (local $lo v128) (local $hi v128)
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $height)))
        (local.set $base (i32.add (local.get $temp)
          (i32.mul (i32.sub (i32.load (i32.add (local.get $first) (i32.shl (local.get $y) (i32.const 2)))) (local.get $rowFirst)) (local.get $stride))))
        (local.set $n (i32.load (i32.add (local.get $taps) (i32.shl (local.get $y) (i32.const 2)))))
        (local.set $wp0 (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $y) (local.get $ksize)) (i32.const 2))))
        (local.set $o (i32.add (local.get $out) (i32.mul (local.get $y) (local.get $stride))))
        (local.set $i (i32.const 0))
        (block $colsDone
          (loop $colLoop
            (br_if $colsDone (i32.ge_u (local.get $i) (local.get $stride)))
            (local.set $a0 (i32x4.splat (i32.const 2097152)))
            (local.set $a1 (local.get $a0))
            (local.set $a2 (local.get $a0))
            (local.set $a3 (local.get $a0))
            (local.set $p (i32.add (local.get $base) (local.get $i)))
            (local.set $wp (local.get $wp0))
            (local.set $k (i32.const 0))
            (block $tapsDone
              (loop $tapLoop
                (br_if $tapsDone (i32.ge_u (local.get $k) (local.get $n)))
                (local.set $v (v128.load (local.get $p)))
                (local.set $w (i32x4.splat (i32.load (local.get $wp))))
                (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
                (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
                (local.set $a0 (i32x4.add (local.get $a0) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (local.get $w))))
                (local.set $a1 (i32x4.add (local.get $a1) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (local.get $w))))
                (local.set $a2 (i32x4.add (local.get $a2) (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (local.get $w))))
                (local.set $a3 (i32x4.add (local.get $a3) (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (local.get $w))))
                (local.set $p (i32.add (local.get $p) (local.get $stride)))
                (local.set $wp (i32.add (local.get $wp) (i32.const 4)))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $tapLoop)))
            (v128.store (i32.add (local.get $o) (local.get $i))
              (i8x16.narrow_i16x8_u
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a0) (i32.const 22)) (i32x4.shr_s (local.get $a1) (i32.const 22)))
                (i16x8.narrow_i32x4_s (i32x4.shr_s (local.get $a2) (i32.const 22)) (i32x4.shr_s (local.get $a3) (i32.const 22)))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $colLoop)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $rowLoop))))
)
