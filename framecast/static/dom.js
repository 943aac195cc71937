// The one DOM helper the playground's modules share.

export const $ = (id) => document.getElementById(id);
