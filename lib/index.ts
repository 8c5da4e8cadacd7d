// The public surface of the course library: notebooks and the command line import from here.
// Each helper line below re-exports one concept file.
export * from "./random";
export * from "./errors";
export * from "./engine";
export * from "./data/instruction-data";
export * from "./data/prompt";
export * from "./data/split";
export * from "./data/tokenizer";
export * from "./data/dataset";
export * from "./data/collate-drafts";
export * from "./data/collate";
export * from "./model/config";
export * from "./model/params";
export * from "./model/layernorm";
export * from "./model/feedforward";
export * from "./model/attention";
export * from "./model/block";
export * from "./model/gpt";
export * from "./train/loss";
export * from "./data/length-grouping";
export * from "./data/loader";
export * from "./data/padding";
export * from "./display";
export * from "./model/safetensors";
export * from "./model/weights";
export * from "./model/hub";
