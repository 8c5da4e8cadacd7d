// Generation: the book's token-by-token loop (with an optional key/value cache), the response extraction of section 7.7, and batched generation of many prompts.
export * from "./generate";
export * from "./batch";
