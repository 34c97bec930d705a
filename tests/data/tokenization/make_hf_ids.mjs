// Writes hf_ids.json: the ids Hugging Face's BERT tokenizer gives each text of texts.json, as a reference that is
// not the package under test. Run from this folder (see README.md):
//   npm install @huggingface/tokenizers@0.2.0 && node make_hf_ids.mjs VOCAB.txt
// tokenizer.json below is all-MiniLM-L6-v2's (bert-base-uncased's): BertNormalizer (clean_text, handle_chinese_chars,
// strip_accents null, lowercase), BertPreTokenizer, WordPiece (## prefix, 100 chars per word), [CLS] $A [SEP].
import { readFileSync, writeFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const vocabLines = readFileSync(process.argv[2], "utf8").split("\n").map(l => l.replace(/\r$/, ""));
if (vocabLines.at(-1) === "") vocabLines.pop();
const vocab = Object.fromEntries(vocabLines.map((t, i) => [t, i]));
const special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(t => ({
  id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
const tokenizerJson = {
  added_tokens: special,
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre_tokenizer: { type: "BertPreTokenizer" },
  model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
    pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
           { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
    special_tokens: { "[CLS]": { id: "[CLS]", ids: [vocab["[CLS]"]], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [vocab["[SEP]"]], tokens: ["[SEP]"] } },
  },
  decoder: { type: "WordPiece", prefix: "##", cleanup: true },
};
const tokenizer = new Tokenizer(tokenizerJson, { do_lower_case: true, model_max_length: 512 });
const texts = JSON.parse(readFileSync("texts.json", "utf8"));
const out = texts.map(({ name, text }) => ({ name, ids: tokenizer.encode(text).ids }));
writeFileSync("hf_ids.json", "[\n" + out.map(o => " " + JSON.stringify(o)).join(",\n") + "\n]\n");
