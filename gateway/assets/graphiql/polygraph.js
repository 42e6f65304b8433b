// Mounts GraphiQL for Polygraph. Kept out of index.html so that the page
// works under a Content-Security-Policy of `script-src 'self'`.
(function () {
  'use strict';

  var endpoint = new URL('/graphql', window.location.href).href;

  var fetcher = GraphiQL.createFetcher({ url: endpoint });

  var defaultQuery = [
    '# Welcome to Polygraph.',
    '#',
    '# Queries run against /graphql on this server.',
    '# Ctrl-Enter (Cmd-Enter on a Mac) runs the query;',
    '# the docs pane (top left) shows the schema.',
    '',
    '{',
    '  __typename',
    '}',
    ''
  ].join('\n');

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: false
    })
  );
})();
