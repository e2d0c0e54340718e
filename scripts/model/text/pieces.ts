/**
 * @file A small, fixed SentencePiece vocabulary for generated test models: every character a test text is likely
 * to hold (so few pieces are `<unk>`), then whole words and subwords preceded by `▁` (SentencePiece's word
 * boundary), with log-probability scores that make the Viterbi segmentation prefer longer pieces. Not trained:
 * test models have random weights, so only the format and the determinism matter.
 */

/** SentencePiece's word-boundary marker (U+2581). */
export const WORD_BOUNDARY = '\u2581';

/** Characters given a piece of their own. */
const CHARACTER_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x21, 0x7e], // ASCII printable
  [0xa1, 0xff], // Latin-1
  [0x391, 0x3c9], // Greek
  [0x410, 0x44f], // Cyrillic
  [0x3041, 0x3093], // Hiragana
  [0x30a1, 0x30f3], // Katakana
];
const CJK = '日本語中文图片猫写真的一是不人在有我他这个们来到时大地为子国';
const HANGUL = '한국어문장사진고양이';

/** Words of the test prompts in several languages; cased forms too, since XLM-R keeps case. */
const WORDS = [
  'a',
  'an',
  'the',
  'of',
  'photo',
  'picture',
  'image',
  'cat',
  'dog',
  'bird',
  'car',
  'tree',
  'house',
  'red',
  'blue',
  'green',
  'small',
  'big',
  'and',
  'with',
  'on',
  'in',
  'is',
  'this',
  'that',
  'very',
  'long',
  'text',
  'word',
  'words',
  'A',
  'The',
  'Photo',
  'Cat',
  'Dog',
  'ein',
  'eine',
  'Foto',
  'einer',
  'Katze',
  'Hund',
  'une',
  'photo',
  'chat',
  'chien',
  'un',
  'una',
  'foto',
  'gato',
  'perro',
  'di',
  'gatto',
  'de',
  'le',
  'la',
  'et',
  'und',
  'y',
  'фото',
  'кошки',
  'собаки',
];
const SUBWORDS = ['s', 'es', 'ed', 'ing', 'er', 'ly', 'tion', 'ung', 'en', 'ze', 'ото', 'ки'];

/**
 * The pieces in id order after the family's special tokens, each with its score. Deterministic; `▁` first.
 */
export function sentencePiecePieces(): Array<[string, number]> {
  const pieces: Array<[string, number]> = [];
  const seen = new Set<string>();
  const add = (piece: string, score: number): void => {
    if (seen.has(piece)) return;
    seen.add(piece);
    pieces.push([piece, Math.fround(score)]);
  };
  add(WORD_BOUNDARY, -2.5);
  WORDS.forEach((word, i) => add(WORD_BOUNDARY + word, -6 - i / 100));
  SUBWORDS.forEach((piece, i) => add(piece, -7 - i / 100));
  pieceCharacters().forEach((char, i) => add(char, -9 - i / 1000));
  return pieces;
}

/** The characters that get a piece of their own, in id order. */
export function pieceCharacters(): string[] {
  const chars: string[] = [];
  for (const [from, to] of CHARACTER_RANGES) for (let cp = from; cp <= to; cp++) chars.push(String.fromCodePoint(cp));
  return [...chars, ...(CJK + HANGUL)];
}

/** The whole words of the vocabulary (without the `▁` marker). */
export function pieceWords(): readonly string[] {
  return WORDS;
}

/** A BPE vocabulary (tokens in id order) and its merges in rank order. */
export interface BpeVocabulary {
  tokens: string[];
  merges: Array<[string, string]>;
}

/**
 * A SentencePiece-style BPE vocabulary after `leading` tokens: `▁`, every piece character, then each word
 * (`▁` + word) as a left-to-right chain of merges (`▁` + c1, then `▁c1` + c2, …), each intermediate kept.
 */
export function bpeVocabulary(leading: readonly string[], options: { lowercase: boolean }): BpeVocabulary {
  const tokens: string[] = [...leading, WORD_BOUNDARY, ...pieceCharacters()];
  const known = new Set(tokens);
  const merges: Array<[string, string]> = [];
  for (const word of WORDS) {
    let left = WORD_BOUNDARY;
    for (const char of options.lowercase ? word.toLowerCase() : word) {
      const merged = left + char;
      if (!known.has(merged)) {
        known.add(merged);
        tokens.push(merged);
        merges.push([left, char]);
      }
      left = merged;
    }
  }
  return { tokens, merges };
}
