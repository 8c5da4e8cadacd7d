// Generation: the book's token-by-token loop and the response extraction of section 7.7.
export * from "./generate";
export * from "./kv-cache-decoder";
