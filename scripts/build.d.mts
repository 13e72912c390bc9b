/** See build.mjs. */
export declare function fingerprint(): string;
export declare function build(options?: { force?: boolean; quiet?: boolean }): boolean;
