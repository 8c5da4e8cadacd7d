// Rich notebook output for the course (tslab): charts, tables and live progress bars.
// Each concept lives in its own file under display/; this file is the one import.
export * from "./display/kernel";
export * from "./display/figure-image";
export * from "./display/plotly";
export * from "./display/table";
export * from "./display/progress";
