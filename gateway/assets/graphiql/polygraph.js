// Mounts GraphiQL for Polygraph. Kept out of index.html so that the page
// works under a Content-Security-Policy of `script-src 'self'`.
(function () {
  'use strict';

  var endpoint = new URL('/graphql', window.location.href).href;

  var httpFetcher = GraphiQL.createFetcher({ url: endpoint });

  // Whether the operation the request runs is a subscription.
  function isSubscription(params, options) {
    var document = options && options.documentAST;
    if (!document) return false;
    return document.definitions.some(function (definition) {
      return (
        definition.kind === 'OperationDefinition' &&
        definition.operation === 'subscription' &&
        (!params.operationName ||
          (definition.name && definition.name.value === params.operationName))
      );
    });
  }

  // A subscription's events over Server-Sent Events (POST, Accept: text/event-stream), as an
  // async iterator GraphiQL shows one result at a time.
  function sseFetcher(params, options) {
    var controller = new AbortController();
    var headers = Object.assign(
      { 'content-type': 'application/json', accept: 'text/event-stream' },
      (options && options.headers) || {}
    );
    var queue = [];
    var waiting = null;
    var finished = false;
    function push(item) {
      if (waiting) {
        var resolve = waiting;
        waiting = null;
        resolve(item);
      } else {
        queue.push(item);
      }
    }
    function end() {
      finished = true;
      push({ done: true, value: undefined });
    }
    fetch(endpoint, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(params),
      signal: controller.signal
    })
      .then(function (response) {
        var type = response.headers.get('content-type') || '';
        if (type.indexOf('text/event-stream') !== 0) {
          // Refused before it started: the JSON answer says why.
          return response.json().then(function (body) {
            push({ done: false, value: body });
            end();
          });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = '';
        function read() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return end();
            buffer += decoder.decode(chunk.value, { stream: true });
            var boundary;
            while ((boundary = buffer.indexOf('\n\n')) >= 0) {
              var message = buffer.slice(0, boundary);
              buffer = buffer.slice(boundary + 2);
              var event = '';
              var data = '';
              message.split('\n').forEach(function (line) {
                if (line.indexOf('event:') === 0) event = line.slice(6).trim();
                else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
              });
              if (event === 'next' && data) push({ done: false, value: JSON.parse(data) });
              if (event === 'complete') return end();
            }
            return read();
          });
        }
        return read();
      })
      .catch(function (error) {
        if (!finished && error.name !== 'AbortError') {
          push({ done: false, value: { errors: [{ message: String(error) }] } });
        }
        end();
      });
    var iterator = {
      next: function () {
        if (queue.length) return Promise.resolve(queue.shift());
        if (finished) return Promise.resolve({ done: true, value: undefined });
        return new Promise(function (resolve) {
          waiting = resolve;
        });
      },
      return: function () {
        controller.abort();
        finished = true;
        return Promise.resolve({ done: true, value: undefined });
      }
    };
    iterator[Symbol.asyncIterator] = function () {
      return iterator;
    };
    return iterator;
  }

  var fetcher = function (params, options) {
    return isSubscription(params, options) ? sseFetcher(params, options) : httpFetcher(params, options);
  };

  var defaultQuery = [
    '# Welcome to Polygraph.',
    '#',
    '# Queries run against /graphql on this server; subscriptions',
    '# (products_changed, orders_changed) stream their events here.',
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
