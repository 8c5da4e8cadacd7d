// Generation: the book's token-by-token loop (with an optional key/value cache) and the response extraction of section 7.7.
export * from "./generate";
